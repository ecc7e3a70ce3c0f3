package identity

import (
	"errors"
	"fmt"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// normalizePhone reads raw with libphonenumber's metadata (a leading '+'
// or the region's international prefix names the country; otherwise the
// number is read in region) and returns it in E.164. Only numbers the
// metadata knows as valid are accepted: a number in no allocated range is
// a typing error or a placeholder, never a shopper.
func normalizePhone(raw, region string) (string, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return "", errors.New("empty")
	}
	region = strings.ToUpper(strings.TrimSpace(region))
	if !strings.HasPrefix(s, "+") && region == "" {
		return "", errors.New("no country code and no default region")
	}
	n, err := phonenumbers.Parse(s, region)
	if err != nil {
		return "", fmt.Errorf("not a phone number (%v)", err)
	}
	if !phonenumbers.IsValidNumber(n) {
		return "", errors.New("not a valid number in any allocated range")
	}
	return phonenumbers.Format(n, phonenumbers.E164), nil
}

// ValidRegion reports whether region is a region code the phone metadata
// knows ("GB", "KR", "US"), for checking a store's configured country.
func ValidRegion(region string) bool {
	return phonenumbers.GetSupportedRegions()[strings.ToUpper(region)]
}
