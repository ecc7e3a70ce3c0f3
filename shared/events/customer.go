package events

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Customer kinds: who the shopper is, what they told us, what they allow,
// and their wish to be forgotten. Every body names the customer by
// identifiers as the till, kiosk or web shop saw them (raw: the hub
// normalises them); only the hub links them into one customer.
const (
	// KindIdentify links identifiers seen together (a loyalty card scanned
	// with a receipt QR carrying an e-mail; a web shop login). Identify
	// body.
	KindIdentify Kind = "identify"
	// KindUpdate sets or clears profile attributes of the customer named.
	// Update body.
	KindUpdate Kind = "update"
	// KindConsent is one consent decision of the customer named. Consent
	// body.
	KindConsent Kind = "consent"
	// KindErase asks the hub to erase the customer named (a shopper's
	// request at a kiosk or till). Erase body.
	KindErase Kind = "erase"
)

// CustomerIdentifierTypes are the identifier types a body may name, as
// keys of its identifiers object, strongest first.
var CustomerIdentifierTypes = []string{"account", "loyalty", "phone", "email", "app"}

// Limits on customer bodies.
const (
	// MaxIdentifiers bounds the identifiers of one body.
	MaxIdentifiers = 16
	// MaxIdentifierLen bounds one raw identifier value.
	MaxIdentifierLen = 320
	// MaxProfileFields bounds the fields one update names.
	MaxProfileFields = 64
	// MaxProfileValue bounds one attribute's value, in bytes.
	MaxProfileValue = 1024
	// MaxEvidenceLen bounds a consent's evidence texts.
	MaxEvidenceLen = 128
)

// CustomerRef names a customer: its identifiers, as the event's source saw
// them ({"loyalty": "LC-1"}). Personal data: never logged.
type CustomerRef map[string]string

// Identify is the body of identify.
type Identify struct {
	Identifiers CustomerRef `json:"identifiers"`
	// Rule names what linked them (card_scan, receipt_qr, login, ...);
	// the hub records it as the link's evidence. Default: identify.
	Rule string `json:"rule,omitempty"`
	// Region is the ISO 3166-1 alpha-2 country a phone number without a
	// country code is read in.
	Region string `json:"region,omitempty"`
}

// Update is the body of update: Fields set (a string) or cleared (null).
type Update struct {
	Customer CustomerRef        `json:"customer"`
	Fields   map[string]*string `json:"fields"`
	Region   string             `json:"region,omitempty"`
}

// Consent is the body of consent. Granted or Status says the decision
// (status: granted, denied, revoked); Channel is the channel granted
// (empty: every channel) or, for an opt-out, where it was given (an
// opt-out holds on every channel).
type Consent struct {
	Customer    CustomerRef `json:"customer"`
	Purpose     string      `json:"purpose"`
	Granted     *bool       `json:"granted,omitempty"`
	Status      string      `json:"status,omitempty"`
	Channel     string      `json:"channel,omitempty"`
	Source      string      `json:"source,omitempty"`
	TextVersion string      `json:"text_version,omitempty"`
	// ExpiresAt is when a grant lapses (RFC 3339).
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	Region    string     `json:"region,omitempty"`
}

// Erase is the body of erase.
type Erase struct {
	Customer CustomerRef `json:"customer"`
	Reason   string      `json:"reason,omitempty"`
	Region   string      `json:"region,omitempty"`
}

// ValidateCustomerRef checks the shape of an identifiers object: known
// types, non-empty values within MaxIdentifierLen, at most MaxIdentifiers.
// field names it in errors.
func ValidateCustomerRef(field string, c CustomerRef) error {
	if len(c) == 0 {
		return fieldErr(field, "at least one identifier is required ("+strings.Join(CustomerIdentifierTypes, ", ")+")")
	}
	if len(c) > MaxIdentifiers {
		return fieldErr(field, fmt.Sprintf("%d identifiers, at most %d", len(c), MaxIdentifiers))
	}
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := c[k]
		if !slices.Contains(CustomerIdentifierTypes, k) {
			return fieldErr(field+"."+k, "unknown identifier type (one of "+strings.Join(CustomerIdentifierTypes, ", ")+")")
		}
		if strings.TrimSpace(v) == "" {
			return fieldErr(field+"."+k, "missing")
		}
		if len(v) > MaxIdentifierLen || !utf8.ValidString(v) {
			return fieldErr(field+"."+k, fmt.Sprintf("must be valid UTF-8 of at most %d bytes", MaxIdentifierLen))
		}
	}
	return nil
}

func validRegion(r string) error {
	if r == "" {
		return nil
	}
	if len(r) != 2 || strings.Trim(strings.ToUpper(r), "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" {
		return fmt.Errorf("must be an ISO 3166-1 alpha-2 country code")
	}
	return nil
}

func validateIdentify(data json.RawMessage, _ string) (json.RawMessage, error) {
	var m Identify
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, jsonFieldErr("", err)
	}
	if err := ValidateCustomerRef("identifiers", m.Identifiers); err != nil {
		return nil, err
	}
	if len(m.Rule) > 64 {
		return nil, fieldErr("rule", "must be at most 64 characters")
	}
	if err := validRegion(m.Region); err != nil {
		return nil, fieldErr("region", err.Error())
	}
	return data, nil
}

func validateUpdate(data json.RawMessage, _ string) (json.RawMessage, error) {
	var m Update
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, jsonFieldErr("", err)
	}
	if err := ValidateCustomerRef("customer", m.Customer); err != nil {
		return nil, err
	}
	if len(m.Fields) == 0 {
		return nil, fieldErr("fields", "at least one field is required")
	}
	if len(m.Fields) > MaxProfileFields {
		return nil, fieldErr("fields", fmt.Sprintf("%d fields, at most %d", len(m.Fields), MaxProfileFields))
	}
	for k, v := range m.Fields {
		if k == "" || len(k) > 64 {
			return nil, fieldErr("fields", "a field name is 1 to 64 characters")
		}
		if v != nil && (len(*v) > MaxProfileValue || !utf8.ValidString(*v)) {
			return nil, fieldErr("fields."+k, fmt.Sprintf("must be valid UTF-8 of at most %d bytes", MaxProfileValue))
		}
	}
	if err := validRegion(m.Region); err != nil {
		return nil, fieldErr("region", err.Error())
	}
	return data, nil
}

// ConsentPurposes, ConsentChannels and ConsentStatuses are the values a
// consent body may carry (the hub's consent rules define them).
var (
	ConsentPurposes = []string{"marketing_email", "sms", "push", "personalisation", "analytics"}
	ConsentChannels = []string{"store", "web", "app", "email", "sms", "phone"}
	ConsentStatuses = []string{"granted", "denied", "revoked"}
)

func validateConsent(data json.RawMessage, _ string) (json.RawMessage, error) {
	var m Consent
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, jsonFieldErr("", err)
	}
	if err := ValidateCustomerRef("customer", m.Customer); err != nil {
		return nil, err
	}
	if !slices.Contains(ConsentPurposes, m.Purpose) {
		return nil, fieldErr("purpose", "one of "+strings.Join(ConsentPurposes, ", "))
	}
	if m.Channel != "" && !slices.Contains(ConsentChannels, m.Channel) {
		return nil, fieldErr("channel", "empty (every channel) or one of "+strings.Join(ConsentChannels, ", "))
	}
	switch {
	case m.Status == "" && m.Granted == nil:
		return nil, fieldErr("granted", "granted (true or false) or status is required")
	case m.Status != "" && !slices.Contains(ConsentStatuses, m.Status):
		return nil, fieldErr("status", "one of "+strings.Join(ConsentStatuses, ", "))
	case m.Status != "" && m.Granted != nil && *m.Granted != (m.Status == "granted"):
		return nil, fieldErr("granted", "contradicts status")
	}
	granted := m.Status == "granted" || m.Status == "" && *m.Granted
	if m.ExpiresAt != nil && !granted {
		return nil, fieldErr("expires_at", "only a grant expires")
	}
	for f, v := range map[string]string{"source": m.Source, "text_version": m.TextVersion} {
		if len(v) > MaxEvidenceLen {
			return nil, fieldErr(f, fmt.Sprintf("must be at most %d characters", MaxEvidenceLen))
		}
	}
	if err := validRegion(m.Region); err != nil {
		return nil, fieldErr("region", err.Error())
	}
	return data, nil
}

func validateErase(data json.RawMessage, _ string) (json.RawMessage, error) {
	var m Erase
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, jsonFieldErr("", err)
	}
	if err := ValidateCustomerRef("customer", m.Customer); err != nil {
		return nil, err
	}
	if len(m.Reason) > 500 {
		return nil, fieldErr("reason", "must be at most 500 characters")
	}
	if err := validRegion(m.Region); err != nil {
		return nil, fieldErr("region", err.Error())
	}
	return data, nil
}

// DecodeCustomerRef returns the customer a stock move body names (a sale's
// "customer": {"loyalty": "LC-1"}), nil when none. A string there (the
// form before customers were kept) names no customer.
func DecodeCustomerRef(data json.RawMessage) CustomerRef {
	raw, ok := fastCustomerField(data)
	if !ok {
		var m struct {
			Customer json.RawMessage `json:"customer"`
		}
		if json.Unmarshal(data, &m) != nil {
			return nil
		}
		raw = m.Customer
	}
	return customerRefOf(raw)
}
