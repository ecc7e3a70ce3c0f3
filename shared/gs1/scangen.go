package gs1

import "strings"

// GenerateScan produces the raw payload a scanner would transmit for a
// symbol of the given symbology holding data in "^" notation ("^" = FNC1,
// "|" separating a composite component, `\^` a literal leading "^"). For
// EAN/UPC and the fixed-length DataBars, data may be the bare number or
// "^01" + GTIN-14; with addCheckDigit the number is given without its check
// digit. GS1 data is validated per AI before encoding. It is mainly useful
// for building test payloads and for replaying scans from logs.
func GenerateScan(sym Symbology, data string, addCheckDigit bool) (string, error) {
	linear, cc, composite := strings.Cut(data, "|")
	gs1 := strings.HasPrefix(data, "^")
	if gs1 {
		if _, err := (Parser{}).ParseCaret(data); err != nil {
			return "", err
		}
	}
	toGS := func(s string) string { return strings.ReplaceAll(s[1:], "^", "\x1d") }
	ccPart := func() (string, error) {
		if !composite {
			return "", nil
		}
		if !strings.HasPrefix(cc, "^") {
			return "", newErr(ErrSyntax, "", len(linear)+1, "composite component must be GS1 data")
		}
		return toGS(cc), nil
	}
	switch sym {
	case SymQR, SymDataMatrix, SymDotCode, SymAztec:
		ids := map[Symbology][2]string{SymQR: {"]Q1", "]Q3"}, SymDataMatrix: {"]d1", "]d2"},
			SymDotCode: {"]J0", "]J1"}, SymAztec: {"]z0", "]z1"}}[sym]
		if !gs1 {
			return ids[0] + unescapeCaretPlain(data), nil
		}
		if composite {
			return "", newErr(ErrSymbology, "", len(linear), "2D symbols have no composite component")
		}
		return ids[1] + toGS(data), nil
	case SymGS1_128, SymDataBar:
		if !gs1 {
			return "", newErr(ErrSymbology, "", 0, sym.String()+" carries only GS1 data")
		}
		if sym == SymGS1_128 && !composite {
			return "]C1" + toGS(data), nil
		}
		out := "]e0" + toGS(linear)
		if composite {
			c, err := ccPart()
			if err != nil {
				return "", err
			}
			es, _ := (Parser{}).ParseCaret(linear)
			if len(es) > 0 && needsSeparator(es[len(es)-1].AI) {
				out += "\x1d"
			}
			out += c
		}
		return out, nil
	case SymDataBarOmni, SymDataBarLimited:
		p, err := primaryNumber(strings.TrimPrefix(linear, "^01"), 14, addCheckDigit)
		if err != nil {
			return "", err
		}
		if sym == SymDataBarLimited && p[0] > '1' {
			return "", newErr(ErrValue, "01", 0, "GS1 DataBar Limited holds GTINs below 20000000000000 only")
		}
		c, err := ccPart()
		if err != nil {
			return "", err
		}
		return "]e001" + p + c, nil
	case SymEAN13, SymUPCA, SymUPCE, SymEAN8:
		n, id, pad := 13, "]E0", ""
		switch sym {
		case SymEAN8:
			n, id = 8, "]E4"
		case SymUPCA, SymUPCE:
			n, pad = 12, "0"
		}
		num := linear
		if zeros := "^01" + strings.Repeat("0", 14-n); strings.HasPrefix(num, zeros) {
			num = num[len(zeros):]
		}
		p, err := primaryNumber(num, n, addCheckDigit)
		if err != nil {
			return "", err
		}
		out := id + pad + p
		if composite {
			c, err := ccPart()
			if err != nil {
				return "", err
			}
			out += "|]e0" + c
		}
		return out, nil
	}
	return "", newErr(ErrSymbology, "", 0, "cannot generate scan data for symbology "+sym.String())
}

// primaryNumber checks (or completes) an n-digit primary number.
func primaryNumber(s string, n int, addCheckDigit bool) (string, error) {
	want := n
	if addCheckDigit {
		want--
	}
	if len(s) != want {
		return "", newErr(ErrLength, "", 0, "primary number has the wrong length")
	}
	if i := firstNot(s, isDigit); i >= 0 {
		return "", newErr(ErrCharset, "", i, "primary number must be digits")
	}
	if addCheckDigit {
		return s + string(mod10(s)), nil
	}
	if err := ValidateCheckDigit(s); err != nil {
		return "", err
	}
	return s, nil
}
