package gs1

import "sort"

// cset identifies the character set of an AI value component.
type cset byte

const (
	csetNumeric cset = 'N' // digits only
	cset82      cset = 'X' // GS1 AI encodable character set 82
	cset39      cset = 'Y' // GS1 AI encodable character set 39
	cset64      cset = 'Z' // base64url, for digital signatures
)

// component is one fixed or variable-length part of an AI value.
type component struct {
	cset     cset
	min, max int
	optional bool
	linters  []linter
	timeFmt  string // date/time layout of the component, e.g. "yymmd0", "hhmi"
}

// aiDef describes an AI or a range of AIs sharing one format; see aiTable.
type aiDef struct {
	first, last  string
	fixedLen     bool
	dlAttr       bool
	comps        []component
	req          [][]string
	ex           []string
	dlKey        bool
	dlQualifiers []string
	title        string
}

// unknownAIDef stands in for AIs accepted under Parser.PermitUnknownAIs:
// any CSET 82 text, separator required.
var unknownAIDef = aiDef{comps: []component{{cset: cset82, min: 1, max: 90}}}

// minLen and maxLen bound the value length.
func (d *aiDef) minLen() int {
	n := 0
	for _, c := range d.comps {
		if !c.optional {
			n += c.min
		}
	}
	return n
}

func (d *aiDef) maxLen() int {
	n := 0
	for _, c := range d.comps {
		n += c.max
	}
	return n
}

// lookupAI finds the table entry for an AI string of 2 to 4 digits.
func lookupAI(ai string) *aiDef {
	if len(ai) < 2 || len(ai) > 4 {
		return nil
	}
	// aiTable is in lexical order of first AI and ranges never straddle
	// another entry, so the candidate is the last entry with first <= ai.
	i := sort.Search(len(aiTable), func(i int) bool { return aiTable[i].first > ai }) - 1
	if i < 0 {
		return nil
	}
	d := &aiTable[i]
	if len(d.first) != len(ai) || ai > d.last {
		return nil
	}
	return d
}

// aiPrefixLen gives the length of every AI starting with the given two
// digits, per the GS1 General Specifications table of AI prefixes; 0 means
// the prefix is not allocated. It lets the unbracketed parser split AIs it
// does not know (Parser.PermitUnknownAIs) and rejects bracketed AIs whose
// length contradicts their prefix.
var aiPrefixLen = [100]uint8{
	2, 2, 2, 2, 2, 0, 0, 0, 0, 0, // 00-09
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, // 10-19
	2, 2, 2, 3, 3, 3, 3, 3, 3, 3, // 20-29
	2, 4, 4, 4, 4, 4, 4, 2, 0, 4, // 30-39
	3, 3, 3, 4, 0, 0, 0, 0, 0, 0, // 40-49
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // 50-59
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // 60-69
	4, 3, 4, 4, 4, 4, 4, 4, 4, 4, // 70-79
	4, 4, 4, 4, 4, 4, 4, 4, 4, 4, // 80-89 (only 80-82 allocated, see below)
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, // 90-99
}

// prefixLen returns the AI length implied by the first two digits of ai, or
// 0 when unknown.
func prefixLen(ai string) int {
	if len(ai) < 2 || !isDigit(ai[0]) || !isDigit(ai[1]) {
		return 0
	}
	p := int(ai[0]-'0')*10 + int(ai[1]-'0')
	if p >= 83 && p <= 89 {
		return 0
	}
	return int(aiPrefixLen[p])
}

// AIInfo is the public description of an Application Identifier.
type AIInfo struct {
	AI    string
	Title string
	// FixedLength is true for predefined-length AIs, which never need an
	// FNC1 separator after them.
	FixedLength bool
	// MinLength and MaxLength bound the value length.
	MinLength, MaxLength int
	// DigitalLinkKey is true for AIs that can be a Digital Link primary
	// key; DigitalLinkAttribute for AIs allowed in the query string.
	DigitalLinkKey, DigitalLinkAttribute bool
}

// LookupAI describes an AI, reporting false when it is not in the table.
func LookupAI(ai string) (AIInfo, bool) {
	if firstNot(ai, isDigit) >= 0 {
		return AIInfo{}, false
	}
	d := lookupAI(ai)
	if d == nil {
		return AIInfo{}, false
	}
	return AIInfo{AI: ai, Title: d.title, FixedLength: d.fixedLen, MinLength: d.minLen(), MaxLength: d.maxLen(),
		DigitalLinkKey: d.dlKey, DigitalLinkAttribute: d.dlAttr}, true
}
