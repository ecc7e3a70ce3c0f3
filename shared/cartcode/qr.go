package cartcode

import (
	"fmt"
	"strings"

	"rsc.io/qr"
)

// QR is a code rendered as a QR symbol, at error correction level M (15%
// of the symbol may be damaged or glare) up to version DenseVersion, which
// phone screens under shop lights and 2D scanners read reliably. A code
// too long for that (a large cart merged from several) drops to level L
// (7%) when that keeps it smaller: a code is shown on a screen, never
// printed and creased, so density costs more than recovery there.
type QR struct {
	code *qr.Code
	// Version is the QR version (1 to 40); Modules the width in modules.
	Version, Modules int
	// Level is the error correction level, "M" or "L".
	Level string
}

// DenseVersion is the largest QR version rendered at level M (77 x 77
// modules) before a code drops to level L.
const DenseVersion = 15

// Render encodes text (a code, alphanumeric by construction) as a QR symbol.
func Render(text string) (*QR, error) {
	c, err := qr.Encode(text, qr.M)
	if err != nil {
		return nil, fmt.Errorf("cartcode: qr: %w", err)
	}
	q := &QR{code: c, Version: (c.Size - 17) / 4, Modules: c.Size, Level: "M"}
	if q.Version <= DenseVersion {
		return q, nil
	}
	if l, err := qr.Encode(text, qr.L); err == nil && l.Size < c.Size {
		q = &QR{code: l, Version: (l.Size - 17) / 4, Modules: l.Size, Level: "L"}
	}
	return q, nil
}

// PNG is the symbol as a PNG image, scale pixels a module, with the
// 4-module quiet zone the standard asks for.
func (q *QR) PNG(scale int) []byte {
	q.code.Scale = max(scale, 1)
	return q.code.PNG()
}

// SVG is the symbol as an SVG image (one path), with the quiet zone.
func (q *QR) SVG() string {
	n := q.Modules + 8
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" shape-rendering="crispEdges" role="img" aria-label="cart QR code">`, n, n)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#fff"/><path fill="#000" d="`, n, n)
	// One rectangle per horizontal run of dark modules.
	for y := range q.Modules {
		for x := 0; x < q.Modules; {
			if !q.code.Black(x, y) {
				x++
				continue
			}
			n := 1
			for x+n < q.Modules && q.code.Black(x+n, y) {
				n++
			}
			fmt.Fprintf(&b, "M%d %dh%dv1h-%dz", x+4, y+4, n, n)
			x += n
		}
	}
	b.WriteString(`"/></svg>`)
	return b.String()
}

// Black reports whether module (x, y) is dark (for tests and other
// renderers).
func (q *QR) Black(x, y int) bool { return q.code.Black(x, y) }
