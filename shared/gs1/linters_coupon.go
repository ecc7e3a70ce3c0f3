package gs1

// Linters for the North American coupon AIs (8110) and (8112). Both values
// are all-digit streams of fields, most introduced by a one-digit variable
// length indicator (VLI). The walk below reports the first field that is
// missing, out of range or cut short, in the field order of the GS1 US
// coupon specification.

// couponCursor walks a coupon string. Errors follow the GS1 syntax
// linters' highlighting convention: a missing field highlights the whole
// value, a truncated one highlights what is left (or the whole value when
// nothing is left).
type couponCursor struct {
	s string
	p int
}

func (c *couponCursor) atEnd() bool { return c.p >= len(c.s) }

func (c *couponCursor) missing(code string) *lintErr { return whole(code, c.s) }

func (c *couponCursor) truncated(code string) *lintErr {
	if c.atEnd() {
		return whole(code, c.s)
	}
	return lintFail(code, c.p, len(c.s)-c.p)
}

// digit reads a one-digit field, failing with missing when absent or bad
// when ok rejects it.
func (c *couponCursor) digit(missing, bad string, ok func(int) bool) (int, *lintErr) {
	if c.atEnd() {
		return 0, c.missing(missing)
	}
	d := int(c.s[c.p] - '0')
	if !ok(d) {
		return 0, lintFail(bad, c.p, 1)
	}
	c.p++
	return d, nil
}

// skip consumes a field of n digits, failing with truncated when short.
func (c *couponCursor) skip(n int, truncated string) *lintErr {
	if len(c.s)-c.p < n {
		return c.truncated(truncated)
	}
	c.p += n
	return nil
}

// gcp consumes an n-digit company prefix and checks its shape.
func (c *couponCursor) gcp(n int, truncated string) *lintErr {
	if len(c.s)-c.p < n {
		return c.truncated(truncated)
	}
	if n > 0 {
		if le := lintKey(c.s[c.p : c.p+n]); le != nil {
			return lintFail(le.code, c.p, n)
		}
	}
	c.p += n
	return nil
}

func rangeOK(lo, hi int) func(int) bool { return func(d int) bool { return d >= lo && d <= hi } }

// purchaseReq handles a purchase requirement: VLI 1-5, the requirement,
// a requirement code 0-4 or 9 and a three-digit family code.
func (c *couponCursor) purchaseReq(n string) *lintErr {
	pre := "GS1_LINTER_COUPON_"
	vli, e := c.digit(pre+"MISSING_"+n+"_PURCHASE_REQUIREMENT_VLI", pre+"INVALID_"+n+"_PURCHASE_REQUIREMENT_LENGTH", rangeOK(1, 5))
	if e != nil {
		return e
	}
	if e := c.skip(vli, pre+"TRUNCATED_"+n+"_PURCHASE_REQUIREMENT"); e != nil {
		return e
	}
	if _, e := c.digit(pre+"MISSING_"+n+"_PURCHASE_REQUIREMENT_CODE", pre+"INVALID_"+n+"_PURCHASE_REQUIREMENT_CODE",
		func(d int) bool { return d <= 4 || d == 9 }); e != nil {
		return e
	}
	return c.skip(3, pre+"TRUNCATED_"+n+"_PURCHASE_FAMILY_CODE")
}

// purchaseGCP handles the company prefix of a 2nd or 3rd purchase: VLI 0-6
// (prefix of VLI+6 digits) or 9 (no prefix, same as the offer's).
func (c *couponCursor) purchaseGCP(n string) *lintErr {
	pre := "GS1_LINTER_COUPON_"
	vli, e := c.digit(pre+"MISSING_"+n+"_PURCHASE_GCP_VLI", pre+"INVALID_"+n+"_PURCHASE_GCP_LENGTH",
		func(d int) bool { return d <= 6 || d == 9 })
	if e != nil {
		return e
	}
	size := 0
	if vli != 9 {
		size = vli + 6
	}
	return c.gcp(size, pre+"TRUNCATED_"+n+"_PURCHASE_GCP")
}

// date reads a YYMMDD date field, reporting it whole when invalid.
func (c *couponCursor) date(short, bad string) (string, *lintErr) {
	if len(c.s)-c.p < 6 {
		return "", c.truncated(short)
	}
	d := c.s[c.p : c.p+6]
	if lintYYMMDD(d) != nil {
		return "", lintFail(bad, c.p, 6)
	}
	c.p += 6
	return d, nil
}

// lintCouponCode checks AI (8110), the North American coupon code.
func lintCouponCode(s string) *lintErr {
	const pre = "GS1_LINTER_COUPON_"
	if e := lintNumeric(s); e != nil {
		return e
	}
	c := &couponCursor{s: s}
	vli, e := c.digit(pre+"MISSING_GCP_VLI", pre+"INVALID_GCP_LENGTH", rangeOK(0, 6))
	if e != nil {
		return e
	}
	if e := c.gcp(vli+6, pre+"TRUNCATED_GCP"); e != nil {
		return e
	}
	if e := c.skip(6, pre+"TRUNCATED_OFFER_CODE"); e != nil {
		return e
	}
	vli, e = c.digit(pre+"MISSING_SAVE_VALUE_VLI", pre+"INVALID_SAVE_VALUE_LENGTH", rangeOK(1, 5))
	if e != nil {
		return e
	}
	if e := c.skip(vli, pre+"TRUNCATED_SAVE_VALUE"); e != nil {
		return e
	}
	if e := c.purchaseReq("1ST"); e != nil {
		return e
	}
	// Optional fields, each introduced by its number, in ascending order.
	if !c.atEnd() && c.s[c.p] == '1' {
		c.p++
		if _, e := c.digit(pre+"MISSING_ADDITIONAL_PURCHASE_RULES_CODE", pre+"INVALID_ADDITIONAL_PURCHASE_RULES_CODE", rangeOK(0, 3)); e != nil {
			return e
		}
		if e := c.purchaseReq("2ND"); e != nil {
			return e
		}
		if e := c.purchaseGCP("2ND"); e != nil {
			return e
		}
	}
	if !c.atEnd() && c.s[c.p] == '2' {
		c.p++
		if e := c.purchaseReq("3RD"); e != nil {
			return e
		}
		if e := c.purchaseGCP("3RD"); e != nil {
			return e
		}
	}
	expiry := ""
	if !c.atEnd() && c.s[c.p] == '3' {
		c.p++
		if expiry, e = c.date(pre+"TOO_SHORT_FOR_EXPIRATION_DATE", pre+"INVALID_EXIPIRATION_DATE"); e != nil {
			return e
		}
	}
	if !c.atEnd() && c.s[c.p] == '4' {
		c.p++
		start, e := c.date(pre+"TOO_SHORT_FOR_START_DATE", pre+"INVALID_START_DATE")
		if e != nil {
			return e
		}
		if expiry != "" && start > expiry {
			return lintFail(pre+"EXPIRATION_BEFORE_START", c.p-14, 14)
		}
	}
	if !c.atEnd() && c.s[c.p] == '5' {
		c.p++
		vli, e := c.digit(pre+"MISSING_SERIAL_NUMBER_VLI", "", rangeOK(0, 9))
		if e != nil {
			return e
		}
		if e := c.skip(vli+6, pre+"TRUNCATED_SERIAL_NUMBER"); e != nil {
			return e
		}
	}
	if !c.atEnd() && c.s[c.p] == '6' {
		c.p++
		vli, e := c.digit(pre+"MISSING_RETAILER_GCP_OR_GLN_VLI", pre+"INVALID_RETAILER_GCP_OR_GLN_LENGTH", rangeOK(1, 7))
		if e != nil {
			return e
		}
		if e := c.gcp(vli+6, pre+"TRUNCATED_RETAILER_GCP_OR_GLN"); e != nil {
			return e
		}
	}
	if !c.atEnd() && c.s[c.p] == '9' {
		c.p++
		if _, e := c.digit(pre+"MISSING_SAVE_VALUE_CODE", pre+"INVALID_SAVE_VALUE_CODE",
			func(d int) bool { return d <= 2 || d == 5 || d == 6 }); e != nil {
			return e
		}
		if _, e := c.digit(pre+"MISSING_SAVE_VALUE_APPLIES_TO_ITEM", pre+"INVALID_SAVE_VALUE_APPLIES_TO_ITEM", rangeOK(0, 2)); e != nil {
			return e
		}
		if _, e := c.digit(pre+"MISSING_STORE_COUPON_FLAG", "", rangeOK(0, 9)); e != nil {
			return e
		}
		if _, e := c.digit(pre+"MISSING_DONT_MULTIPLY_FLAG", pre+"INVALID_DONT_MULTIPLY_FLAG", rangeOK(0, 1)); e != nil {
			return e
		}
	}
	if !c.atEnd() {
		return lintFail(pre+"EXCESS_DATA", c.p, len(s)-c.p)
	}
	return nil
}

// lintCouponPosOffer checks AI (8112), the positive offer file coupon code.
func lintCouponPosOffer(s string) *lintErr {
	const pre = "GS1_LINTER_COUPON_"
	if e := lintNumeric(s); e != nil {
		return e
	}
	c := &couponCursor{s: s}
	if _, e := c.digit(pre+"MISSING_FORMAT_CODE", pre+"INVALID_FORMAT_CODE", rangeOK(0, 1)); e != nil {
		return e
	}
	vli, e := c.digit(pre+"MISSING_FUNDER_VLI", pre+"INVALID_FUNDER_LENGTH", rangeOK(0, 6))
	if e != nil {
		return e
	}
	if e := c.skip(vli+6, pre+"TRUNCATED_FUNDER"); e != nil {
		return e
	}
	if e := c.skip(6, pre+"TRUNCATED_OFFER_CODE"); e != nil {
		return e
	}
	vli, e = c.digit(pre+"MISSING_SERIAL_NUMBER_VLI", "", rangeOK(0, 9))
	if e != nil {
		return e
	}
	if e := c.skip(vli+6, pre+"TRUNCATED_SERIAL_NUMBER"); e != nil {
		return e
	}
	if !c.atEnd() {
		return lintFail(pre+"EXCESS_DATA", c.p, len(s)-c.p)
	}
	return nil
}
