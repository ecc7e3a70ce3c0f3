package gs1

// Cross-AI association rules from the AI table: requisites ("req"),
// mutual exclusions ("ex"), agreement of repeated AIs, and the digital
// signature (8030) needing a serialised key. GS1 states these rules over
// all data carriers on one item, so they are separate from parsing.

// matchPattern reports whether ai matches a table pattern in which "n"
// stands for any digit, e.g. "31nn" or "394n".
func matchPattern(pattern, ai string) bool {
	if len(pattern) != len(ai) {
		return false
	}
	for i := 0; i < len(pattern); i++ {
		if pattern[i] != ai[i] && !(pattern[i] == 'n' && isDigit(ai[i])) {
			return false
		}
	}
	return true
}

func (es ElementString) hasMatch(pattern string) bool {
	for _, v := range es {
		if matchPattern(pattern, v.AI) {
			return true
		}
	}
	return false
}

// Validate applies every cross-AI rule: requisites, exclusions, repeats and
// the digital-signature rule. Each failure wraps ErrAssociation.
func (es ElementString) Validate() error {
	if err := es.CheckRepeats(); err != nil {
		return err
	}
	if err := es.CheckExclusions(); err != nil {
		return err
	}
	if err := es.CheckRequisites(); err != nil {
		return err
	}
	return es.CheckDigitalSignature()
}

// CheckRequisites verifies that every AI with requisites is accompanied by
// them, e.g. (21) needs (01), (03) or (8006).
func (es ElementString) CheckRequisites() error {
	for _, v := range es {
		d := lookupAI(v.AI)
		if d == nil {
			continue
		}
		for _, rule := range d.req {
			if !es.satisfies(rule) {
				return newErr(ErrAssociation, v.AI, -1, "required AIs not present: one of "+joinAlts(rule))
			}
		}
	}
	return nil
}

func (es ElementString) satisfies(rule []string) bool {
	for _, alt := range rule {
		all := true
		for _, part := range splitPlus(alt) {
			if !es.hasMatch(part) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

func splitPlus(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '+' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

func joinAlts(rule []string) string {
	s := ""
	for i, a := range rule {
		if i > 0 {
			s += ","
		}
		s += a
	}
	return s
}

// CheckExclusions verifies that no two mutually exclusive AIs appear
// together, e.g. (01) with (02), or two net weights (310n) in different
// units. An AI never excludes itself.
func (es ElementString) CheckExclusions() error {
	for _, v := range es {
		d := lookupAI(v.AI)
		if d == nil {
			continue
		}
		for _, pat := range d.ex {
			for _, w := range es {
				if w.AI != v.AI && matchPattern(pat, w.AI) {
					return newErr(ErrAssociation, v.AI, -1, "AI ("+v.AI+") must not be used with ("+w.AI+")")
				}
			}
		}
	}
	return nil
}

// CheckRepeats verifies that an AI occurring more than once always carries
// the same value.
func (es ElementString) CheckRepeats() error {
	for i, v := range es {
		for _, w := range es[:i] {
			if w.AI == v.AI && w.Value != v.Value {
				return newErr(ErrAssociation, v.AI, -1, "AI repeated with different values")
			}
		}
	}
	return nil
}

// CheckDigitalSignature verifies that a digital signature (8030) only signs
// serialised keys: (253), (255) and (8003) must carry their optional serial
// component.
func (es ElementString) CheckDigitalSignature() error {
	if !es.hasMatch("8030") {
		return nil
	}
	for _, v := range es {
		short := (v.AI == "253" && len(v.Value) <= 13) || (v.AI == "255" && len(v.Value) <= 13) ||
			(v.AI == "8003" && len(v.Value) <= 14)
		if short {
			return newErr(ErrAssociation, v.AI, -1, "digital signature (8030) requires a serialised key")
		}
	}
	return nil
}
