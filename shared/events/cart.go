package events

import (
	"encoding/json"
	"fmt"
)

// Cart kinds: a shopper's cart, edited from the web shop, a phone, a kiosk
// or a till, claimed by a customer when she identifies, and checked out
// once. The rules are in the hub's carts package.
const (
	// KindLineSet sets the quantity of some lines of a cart (0 removes a
	// line). Each line is last-writer-wins by the event's stamp. It
	// carries a LineSet body.
	KindLineSet Kind = "line_set"
	// KindClaim gives an anonymous cart to a customer. It carries a Claim
	// body.
	KindClaim Kind = "claim"
	// KindCheckout closes a cart: a sale at a till or an online order. It
	// carries a Checkout body.
	KindCheckout Kind = "checkout"
)

// CartIDLen is the length of a cart id: 26 characters of lowercase RFC 4648
// base32 (a-z, 2-7), the spelling of 128 random bits. A cart id is a
// capability (the shopper's phone page is addressed by it), so it is never
// guessable and never derived from anything else.
const CartIDLen = 26

// MaxCustomerLen bounds a customer id: the opaque master id of the
// customers side, never an identifier (e-mail, phone) itself.
const MaxCustomerLen = 64

// CartLine is one line of a line_set: a SKU's quantity in the cart (>= 0,
// 0 removes it) and its unit price when the sender knows it.
type CartLine struct {
	SKU       string `json:"sku"`
	Qty       int64  `json:"qty"`
	UnitPrice *int64 `json:"unit_price,omitempty"`
}

// LineSet is the body of line_set.
type LineSet struct {
	CartID string     `json:"cart_id"`
	Lines  []CartLine `json:"lines"`
	// Customer, when set, is the cart's owner as the sender knows it (a
	// cart created for a signed-in shopper); it works as a claim.
	Customer string `json:"customer,omitempty"`
	// Channel is where the edit was made: web, phone, kiosk, mirror, till.
	Channel string `json:"channel,omitempty"`
}

// Claim is the body of claim: the anonymous cart CartID now belongs to
// Customer.
type Claim struct {
	CartID   string `json:"cart_id"`
	Customer string `json:"customer"`
}

// Checkout is the body of checkout: cart CartID was sold (a till's sale,
// SaleID the sale event's id) or ordered online (OrderID) as it stood at
// Version. Lines are what was paid for.
type Checkout struct {
	CartID   string     `json:"cart_id"`
	Version  int64      `json:"version"`
	Lines    []CartLine `json:"lines,omitempty"`
	Location string     `json:"location,omitempty"`
	OrderID  string     `json:"order_id,omitempty"`
	SaleID   string     `json:"sale_id,omitempty"`
	Channel  string     `json:"channel,omitempty"`
}

// ValidCartID checks a cart id's spelling (CartIDLen characters of a-z and
// 2-7).
func ValidCartID(s string) error {
	if len(s) != CartIDLen {
		return fmt.Errorf("must be %d characters (a-z, 2-7)", CartIDLen)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return fmt.Errorf("character %q not allowed (a-z, 2-7)", c)
		}
	}
	// 26 base32 characters carry 130 bits: the last one's two low bits are
	// unused and must be zero, so one id has one spelling.
	if c := s[CartIDLen-1]; c >= 'a' && c <= 'z' && (c-'a')%4 != 0 || c >= '2' && c <= '7' && (c-'2'+26)%4 != 0 {
		return fmt.Errorf("not a canonical cart id (last character)")
	}
	return nil
}

// ValidCustomer checks an opaque customer id: a token of 1 to
// MaxCustomerLen letters, digits, '-' and '_'.
func ValidCustomer(s string) error { return ValidToken(s) }

func validateCartLines(lines []CartLine, required bool) error {
	if len(lines) == 0 {
		if required {
			return fieldErr("lines", "at least one line is required")
		}
		return nil
	}
	if len(lines) > MaxLines {
		return fieldErr("lines", fmt.Sprintf("%d lines, the limit is %d", len(lines), MaxLines))
	}
	seen := make(map[string]int, len(lines))
	for i, l := range lines {
		f := fmt.Sprintf("lines[%d]", i)
		if err := validSKU(l.SKU); err != nil {
			return fieldErr(f+".sku", err.Error())
		}
		if j, dup := seen[l.SKU]; dup {
			return fieldErr(f+".sku", fmt.Sprintf("%q already in lines[%d]", l.SKU, j))
		}
		seen[l.SKU] = i
		if l.Qty < 0 || l.Qty > MaxDeltaQty {
			return fieldErr(f+".qty", fmt.Sprintf("%d is out of range (0 to %d; 0 removes the line)", l.Qty, MaxDeltaQty))
		}
		if l.UnitPrice != nil && *l.UnitPrice < 0 {
			return fieldErr(f+".unit_price", "must not be negative")
		}
	}
	return nil
}

func validateLineSet(data json.RawMessage, _ string) (json.RawMessage, error) {
	var m LineSet
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, jsonFieldErr("", err)
	}
	if err := ValidCartID(m.CartID); err != nil {
		return nil, fieldErr("cart_id", err.Error())
	}
	if m.Customer != "" {
		if err := ValidCustomer(m.Customer); err != nil {
			return nil, fieldErr("customer", err.Error())
		}
	}
	if len(m.Channel) > 32 {
		return nil, fieldErr("channel", "must be at most 32 characters")
	}
	if err := validateCartLines(m.Lines, true); err != nil {
		return nil, err
	}
	return data, nil
}

func validateClaim(data json.RawMessage, _ string) (json.RawMessage, error) {
	var m Claim
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, jsonFieldErr("", err)
	}
	if err := ValidCartID(m.CartID); err != nil {
		return nil, fieldErr("cart_id", err.Error())
	}
	if err := ValidCustomer(m.Customer); err != nil {
		return nil, fieldErr("customer", err.Error())
	}
	return data, nil
}

func validateCheckout(data json.RawMessage, defLoc string) (json.RawMessage, error) {
	var m Checkout
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, jsonFieldErr("", err)
	}
	if err := ValidCartID(m.CartID); err != nil {
		return nil, fieldErr("cart_id", err.Error())
	}
	if m.Version < 0 {
		return nil, fieldErr("version", "must not be negative")
	}
	if err := validateCartLines(m.Lines, false); err != nil {
		return nil, err
	}
	for _, f := range []struct{ name, v string }{{"order_id", m.OrderID}, {"sale_id", m.SaleID}} {
		if len(f.v) > 128 {
			return nil, fieldErr(f.name, "must be at most 128 characters")
		}
	}
	if m.Location == "" && defLoc != "" {
		return setField(data, "location", defLoc)
	}
	if m.Location != "" {
		if err := ValidToken(m.Location); err != nil {
			return nil, fieldErr("location", err.Error())
		}
	}
	return data, nil
}
