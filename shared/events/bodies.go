package events

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Line is one SKU and quantity within an event.
type Line struct {
	SKU string `json:"sku"`
	// Qty is positive for sale, return, receipt, transfers and reservations;
	// signed (never zero) for adjust; absolute (>= 0) for count. A sale of 2
	// lowers on_hand by 2: the sign comes from the kind.
	Qty int64 `json:"qty"`
	// UnitPrice in minor currency units (cents), optional.
	UnitPrice *int64 `json:"unit_price,omitempty"`
}

// StockMove is the body of sale, return, receipt, adjust, count,
// transfer_out and transfer_in.
type StockMove struct {
	// Location whose stock moves; defaults to the agent's store.
	Location string `json:"location"`
	Lines    []Line `json:"lines"`
	// OrderID, Channel and Reason are informational.
	OrderID string `json:"order_id,omitempty"`
	// Customer names the shopper by identifiers ({"loyalty": "LC-1"}):
	// the hub attributes a sale or a return to the customer they belong
	// to (DecodeCustomerRef). A plain string is accepted and names no one.
	Customer json.RawMessage `json:"customer,omitempty"`
	Channel  string          `json:"channel,omitempty"`
	Reason   string          `json:"reason,omitempty"`
	// TransferID pairs a transfer_out with its transfer_in.
	TransferID string `json:"transfer_id,omitempty"`
	// To is the destination of a transfer_out, From the source of a
	// transfer_in.
	To   string `json:"to,omitempty"`
	From string `json:"from,omitempty"`
	// Method and SnapshotAt belong to counts only. Method says how the
	// count was taken (CountMethods; empty from agents that predate it).
	// SnapshotAt is when the shelf was observed (the start of an RFID
	// sweep); absent, the event's own time. The hub places the count there,
	// so a sale made while the sweep ran is folded into the count's result
	// instead of being lost under it.
	Method     string    `json:"method,omitempty"`
	SnapshotAt time.Time `json:"snapshot_at,omitzero"`
}

// How a count was taken (StockMove.Method).
const (
	// CountRFIDSweep: an RFID sweep read every tag of the counted SKUs.
	CountRFIDSweep = "rfid_sweep"
	// CountManual: staff counted by hand (the POS count screen).
	CountManual = "manual"
	// CountCycle: a planned cycle count of a part of the store.
	CountCycle = "cycle"
)

// CountMethods lists the valid count methods.
var CountMethods = []string{CountRFIDSweep, CountManual, CountCycle}

// MaxSnapshotLead bounds how long before its event a count's snapshot may
// be: a sweep or a count session longer than this is an error somewhere.
// The hub refuses counts whose snapshot is older (their snapshot cannot be
// checked here: the event's clock stamp is given only by the outbox).
const MaxSnapshotLead = 24 * time.Hour

// snapshotRange bounds snapshot_at to times an HLC can carry sensibly.
var snapshotRange = [2]time.Time{time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)}

// Delta returns the signed change to on_hand of line l for a delta kind.
func Delta(k Kind, l Line) int64 {
	switch k {
	case KindSale, KindTransferOut, KindFulfil:
		return -l.Qty
	case KindReturn, KindReceipt, KindTransferIn, KindAdjust:
		return l.Qty
	}
	return 0
}

// ReservationMove is the body of reserve, release and fulfil.
type ReservationMove struct {
	ReservationID string `json:"reservation_id"`
	Location      string `json:"location"`
	// Lines: required for reserve and fulfil (fulfil takes exactly what was
	// handed over off on_hand); optional for release, which always releases
	// the whole reservation.
	Lines   []Line `json:"lines,omitempty"`
	OrderID string `json:"order_id,omitempty"`
	Channel string `json:"channel,omitempty"`
}

// DeviceStatus is the body of device_status.
type DeviceStatus struct {
	Name   string `json:"name"`
	State  string `json:"state"`
	Detail string `json:"detail,omitempty"`
}

// Scan is the body of scan: a shopper or cashier looked a product up.
type Scan struct {
	Code      string `json:"code"`
	Symbology string `json:"symbology,omitempty"`
	GTIN      string `json:"gtin,omitempty"`
	SKU       string `json:"sku,omitempty"`
}

// FittingRoom is the body of enter and leave: one tagged item in a zone
// (a fitting room, a smart mirror), as the agent's RFID smoother saw it.
type FittingRoom struct {
	Zone   string `json:"zone"`
	EPC    string `json:"epc"`
	GTIN   string `json:"gtin"`
	Serial string `json:"serial,omitempty"`
	// SKU is filled when the agent's catalog knows the GTIN.
	SKU    string  `json:"sku,omitempty"`
	Reader string  `json:"reader,omitempty"`
	RSSI   float64 `json:"rssi,omitempty"`
	// DwellMS is how long the item stayed (leave only).
	DwellMS int64 `json:"dwell_ms,omitempty"`
	// Visit names one shopper's visit to the zone: the agent starts a new
	// one when an item enters an empty room. Items of one visit were
	// tried together (the hub's co-occurrence and try-on analytics).
	Visit string `json:"visit,omitempty"`
}

// DecodeStockMove decodes a body already validated for a stock kind.
func DecodeStockMove(data json.RawMessage) (StockMove, error) {
	var m StockMove
	if err := unmarshalStockMove(data, &m); err != nil {
		return m, jsonFieldErr("", err)
	}
	return m, nil
}

// DecodeReservationMove decodes a body already validated for a reservation kind.
func DecodeReservationMove(data json.RawMessage) (ReservationMove, error) {
	var m ReservationMove
	if err := unmarshalReservationMove(data, &m); err != nil {
		return m, jsonFieldErr("", err)
	}
	return m, nil
}

func validateStockMove(k Kind) func(json.RawMessage, string) (json.RawMessage, error) {
	return func(data json.RawMessage, defLoc string) (json.RawMessage, error) {
		out, _, err := checkStockMove(k, data, defLoc)
		return out, err
	}
}

// checkStockMove validates a stock move body, returning it normalised
// and, when it needed no default, what it decodes to (nil when the
// location was filled in: the body decoded is then not data).
func checkStockMove(k Kind, data json.RawMessage, defLoc string) (json.RawMessage, *stockBody, error) {
	b := &stockBody{}
	m := &b.m
	if err := unmarshalStockMove(data, m); err != nil {
		return nil, nil, jsonFieldErr("", err)
	}
	filled := false
	if m.Location == "" && defLoc != "" {
		m.Location, filled = defLoc, true
	}
	if err := ValidToken(m.Location); err != nil {
		return nil, nil, fieldErr("location", err.Error())
	}
	switch k {
	case KindTransferOut:
		if err := ValidToken(m.To); err != nil {
			return nil, nil, fieldErr("to", err.Error())
		}
	case KindTransferIn:
		if err := ValidToken(m.From); err != nil {
			return nil, nil, fieldErr("from", err.Error())
		}
	}
	if err := validateLines(k, m.Lines, true); err != nil {
		return nil, nil, err
	}
	if err := validateCountFields(k, *m); err != nil {
		return nil, nil, err
	}
	if c := bytes.TrimSpace(m.Customer); len(c) > 0 && c[0] == '{' {
		var ref CustomerRef
		if err := json.Unmarshal(c, &ref); err != nil {
			return nil, nil, jsonFieldErr("customer", err)
		}
		if err := ValidateCustomerRef("customer", ref); err != nil {
			return nil, nil, err
		}
		// What DecodeCustomerRef makes of the body: the same object,
		// unless the field's bytes do not start with it.
		if m.Customer[0] == '{' && len(ref) > 0 {
			b.ref = ref
		}
	} else if len(c) > 0 && c[0] != '"' && !bytes.Equal(c, []byte("null")) {
		return nil, nil, fieldErr("customer", "must be an object of identifiers, e.g. {\"loyalty\": \"LC-1\"}")
	}
	if !filled {
		return data, b, nil
	}
	out, err := setField(data, "location", m.Location)
	return out, nil, err
}

func validateReservation(k Kind) func(json.RawMessage, string) (json.RawMessage, error) {
	return func(data json.RawMessage, defLoc string) (json.RawMessage, error) {
		out, _, err := checkReservation(k, data, defLoc)
		return out, err
	}
}

// checkReservation is checkStockMove for reservation bodies.
func checkReservation(k Kind, data json.RawMessage, defLoc string) (json.RawMessage, *reservationBody, error) {
	b := &reservationBody{}
	m := &b.m
	if err := unmarshalReservationMove(data, m); err != nil {
		return nil, nil, jsonFieldErr("", err)
	}
	if err := validateText(m.ReservationID, 128); err != nil {
		return nil, nil, fieldErr("reservation_id", err.Error())
	}
	filled := false
	if m.Location == "" && defLoc != "" {
		m.Location, filled = defLoc, true
	}
	if err := ValidToken(m.Location); err != nil {
		return nil, nil, fieldErr("location", err.Error())
	}
	if err := validateLines(k, m.Lines, k != KindRelease); err != nil {
		return nil, nil, err
	}
	if !filled {
		return data, b, nil
	}
	out, err := setField(data, "location", m.Location)
	return out, nil, err
}

func validateDeviceStatus(data json.RawMessage, _ string) (json.RawMessage, error) {
	var m DeviceStatus
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, jsonFieldErr("", err)
	}
	if err := validateText(m.Name, 128); err != nil {
		return nil, fieldErr("name", err.Error())
	}
	if err := validateText(m.State, 32); err != nil {
		return nil, fieldErr("state", err.Error())
	}
	return data, nil
}

func validateScan(data json.RawMessage, _ string) (json.RawMessage, error) {
	var m Scan
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, jsonFieldErr("", err)
	}
	if m.Code == "" || len(m.Code) > 4096 {
		return nil, fieldErr("code", "must be 1 to 4096 bytes")
	}
	return data, nil
}

func validateFittingRoom(k Kind) func(json.RawMessage, string) (json.RawMessage, error) {
	return func(data json.RawMessage, _ string) (json.RawMessage, error) {
		var m FittingRoom
		if err := json.Unmarshal(data, &m); err != nil {
			return nil, jsonFieldErr("", err)
		}
		if err := validateText(m.Zone, 64); err != nil {
			return nil, fieldErr("zone", err.Error())
		}
		if len(m.EPC) == 0 || len(m.EPC) > 128 || !isHex(m.EPC) {
			return nil, fieldErr("epc", "must be the tag's EPC in hex")
		}
		if len(m.GTIN) != 14 || !isDigits(m.GTIN) {
			return nil, fieldErr("gtin", "must be a 14-digit GTIN")
		}
		if m.DwellMS < 0 {
			return nil, fieldErr("dwell_ms", "must not be negative")
		}
		if err := validateText(m.Visit, 64); m.Visit != "" && err != nil {
			return nil, fieldErr("visit", err.Error())
		}
		if k == KindEnter && m.DwellMS != 0 {
			return nil, fieldErr("dwell_ms", "only a leave has a dwell time")
		}
		return data, nil
	}
}

// validateCountFields checks a count's method and snapshot time, and that
// no other kind carries them.
func validateCountFields(k Kind, m StockMove) error {
	if k != KindCount {
		if m.Method != "" {
			return fieldErr("method", "only a count has a method")
		}
		if !m.SnapshotAt.IsZero() {
			return fieldErr("snapshot_at", "only a count has a snapshot time")
		}
		return nil
	}
	if m.Method != "" && !slices.Contains(CountMethods, m.Method) {
		return fieldErr("method", fmt.Sprintf("unknown count method %q (one of %s)", m.Method, strings.Join(CountMethods, ", ")))
	}
	if t := m.SnapshotAt; !t.IsZero() && (t.Before(snapshotRange[0]) || !t.Before(snapshotRange[1])) {
		return fieldErr("snapshot_at", "must be a time from 2000 to 2199 (RFC 3339)")
	}
	return nil
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func validateLines(k Kind, lines []Line, required bool) error {
	if len(lines) == 0 {
		if required {
			return fieldErr("lines", "at least one line is required")
		}
		return nil
	}
	if len(lines) > MaxLines {
		return fieldErr("lines", fmt.Sprintf("%d lines, the limit is %d", len(lines), MaxLines))
	}
	for i, l := range lines {
		if err := validSKU(l.SKU); err != nil {
			return fieldErr(lineField(i, "sku"), err.Error())
		}
		switch k {
		case KindAdjust:
			if l.Qty == 0 {
				return fieldErr(lineField(i, "qty"), "must not be zero")
			}
			if l.Qty > MaxDeltaQty || l.Qty < -MaxDeltaQty {
				return fieldErr(lineField(i, "qty"), fmt.Sprintf("%d is out of range (|qty| <= %d)", l.Qty, MaxDeltaQty))
			}
		case KindCount:
			if l.Qty < 0 {
				return fieldErr(lineField(i, "qty"), "a count cannot be negative")
			}
			if l.Qty > MaxCountQty {
				return fieldErr(lineField(i, "qty"), fmt.Sprintf("%d is out of range (<= %d)", l.Qty, MaxCountQty))
			}
		default:
			if l.Qty <= 0 {
				return fieldErr(lineField(i, "qty"), "must be positive (the kind gives the direction)")
			}
			if l.Qty > MaxDeltaQty {
				return fieldErr(lineField(i, "qty"), fmt.Sprintf("%d is out of range (<= %d)", l.Qty, MaxDeltaQty))
			}
		}
		if l.UnitPrice != nil && *l.UnitPrice < 0 {
			return fieldErr(lineField(i, "unit_price"), "must not be negative")
		}
	}
	if k == KindCount {
		seen := make(map[string]int, len(lines))
		for i, l := range lines {
			if j, dup := seen[l.SKU]; dup {
				return fieldErr(fmt.Sprintf("lines[%d].sku", i), fmt.Sprintf("%q already counted in lines[%d]", l.SKU, j))
			}
			seen[l.SKU] = i
		}
	}
	return nil
}

// lineField names field name of line i in an error, made only when
// there is one: validation runs for every event the hub ingests.
func lineField(i int, name string) string {
	return fmt.Sprintf("lines[%d].%s", i, name)
}

func validSKU(s string) error {
	if s == "" {
		return fmt.Errorf("missing")
	}
	if len(s) > MaxSKULen {
		return fmt.Errorf("must be at most %d characters", MaxSKULen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f {
			return fmt.Errorf("character %q not allowed (printable ASCII without spaces)", c)
		}
	}
	return nil
}

func validateText(s string, max int) error {
	if strings.TrimSpace(s) == "" {
		return fmt.Errorf("missing")
	}
	if len(s) > max {
		return fmt.Errorf("must be at most %d characters", max)
	}
	return nil
}

// setField returns the JSON object data with key set to value, keeping every
// other field as the sender wrote it.
func setField(data json.RawMessage, key string, value any) (json.RawMessage, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil {
		return nil, jsonFieldErr("", err)
	}
	v, err := json.Marshal(value)
	if err != nil {
		return nil, err
	}
	obj[key] = v
	return json.Marshal(obj)
}
