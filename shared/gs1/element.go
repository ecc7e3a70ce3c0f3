package gs1

import (
	"sort"
	"strings"
)

// AIValue is one Application Identifier and its value, e.g. {"01",
// "09506000134352"}.
type AIValue struct {
	AI, Value string
}

// ElementString is an ordered list of AI values as found in one barcode or
// Digital Link. Order is preserved because it is significant for
// re-encoding and for Digital Link path order.
type ElementString []AIValue

// Get returns the value of the first occurrence of ai.
func (es ElementString) Get(ai string) (string, bool) {
	for _, v := range es {
		if v.AI == ai {
			return v.Value, true
		}
	}
	return "", false
}

// GTIN returns the GTIN-14 carried by AI (01), or by AI (02) (the GTIN of
// contained trade items) when there is no (01); "" when neither is present.
func (es ElementString) GTIN() string {
	if v, ok := es.Get("01"); ok {
		return v
	}
	v, _ := es.Get("02")
	return v
}

// HRI returns the human readable interpretation as printed under a barcode:
// "(01)09506000134352(10)ABC". Values are not escaped; use Bracketed for a
// string that must parse back.
func (es ElementString) HRI() string {
	var b strings.Builder
	for _, v := range es {
		b.WriteByte('(')
		b.WriteString(v.AI)
		b.WriteByte(')')
		b.WriteString(v.Value)
	}
	return b.String()
}

// HRILines returns one "(AI) value" line per element, optionally prefixed
// with the AI's data title ("GTIN (01) 09506000134352"), as shown on a
// cashier screen.
func (es ElementString) HRILines(titles bool) []string {
	out := make([]string, 0, len(es))
	for _, v := range es {
		line := "(" + v.AI + ") " + v.Value
		if titles {
			if d := lookupAI(v.AI); d != nil && d.title != "" {
				line = d.title + " " + line
			}
		}
		out = append(out, line)
	}
	return out
}

// Bracketed returns the bracketed element string with any "(" in values
// escaped as `\(`, so that ParseBracketed returns the same AIs.
func (es ElementString) Bracketed() string {
	var b strings.Builder
	for _, v := range es {
		b.WriteByte('(')
		b.WriteString(v.AI)
		b.WriteByte(')')
		b.WriteString(strings.ReplaceAll(v.Value, "(", `\(`))
	}
	return b.String()
}

// String returns the bracketed form.
func (es ElementString) String() string { return es.Bracketed() }

// needsSeparator reports whether a separator must follow ai when another
// AI comes after it.
func needsSeparator(ai string) bool {
	d := lookupAI(ai)
	return d == nil || !d.fixedLen
}

// Encode returns the unbracketed element string with sep between a
// variable-length value and the next AI, and no separator after
// predefined-length AIs or at the end. With sep "\x1d" this is what a
// scanner transmits after the symbology identifier; prefix "^" and use sep
// "^" for the FNC1 caret notation (see Caret).
func (es ElementString) Encode(sep string) string {
	var b strings.Builder
	for i, v := range es {
		if i > 0 && needsSeparator(es[i-1].AI) {
			b.WriteString(sep)
		}
		b.WriteString(v.AI)
		b.WriteString(v.Value)
	}
	return b.String()
}

// Raw returns the element string as a scanner transmits it after the
// symbology identifier: AIs run together with GS (0x1D) separators.
func (es ElementString) Raw() string { return es.Encode("\x1d") }

// Caret returns the element string in "^" notation, "^" standing for FNC1
// both in first position and as separator, e.g. "^010950600013435210ABC^21X"
// (no separator after the predefined-length (01)).
func (es ElementString) Caret() string { return "^" + es.Encode("^") }

// FromMap builds an element string from an AI-to-value map, ordered by AI
// so that the result is deterministic.
func FromMap(m map[string]string) ElementString {
	es := make(ElementString, 0, len(m))
	for ai, v := range m {
		es = append(es, AIValue{AI: ai, Value: v})
	}
	sort.Slice(es, func(i, j int) bool { return es[i].AI < es[j].AI })
	return es
}

// SortForEncoding returns a copy with predefined-length AIs moved to the
// front (otherwise keeping the order), which minimises the FNC1 separators
// needed when encoding a symbol, as the GS1 General Specifications advise.
func (es ElementString) SortForEncoding() ElementString {
	out := make(ElementString, 0, len(es))
	for _, fixed := range [...]bool{true, false} {
		for _, v := range es {
			if !needsSeparator(v.AI) == fixed {
				out = append(out, v)
			}
		}
	}
	return out
}
