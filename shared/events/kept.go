package events

import "encoding/json"

// The hub reads a stock or reservation move's body several times: Decode
// decodes it to check it, then the ledger, the reservations, the
// exception checks and the purchases read it again, hundreds of
// thousands of events a minute during a store's catch-up. So Decode keeps
// the body its checks decoded on the envelope (never encoded: the field
// is unexported), and the readers ask the envelope (StockMove,
// ReservationMove, CustomerRef), which hands it out instead of decoding
// again. What is kept holds only for the Data it was decoded from: an
// envelope whose Data is replaced (an exception's rewrite, a scrub)
// decodes its new body, and an envelope built any other way decodes on
// every call, as before.

// stockBody is a stock move body as decoded from src.
type stockBody struct {
	src []byte
	m   StockMove
	// ref is DecodeCustomerRef(src).
	ref CustomerRef
}

// reservationBody is a reservation body as decoded from src.
type reservationBody struct {
	src []byte
	m   ReservationMove
}

// sameBytes reports whether a and b are the same bytes in memory.
func sameBytes(a, b []byte) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// StockMove returns the body of a stock kind (sale, return, receipt,
// adjust, count, transfers), as DecodeStockMove(e.Data) does. When e
// keeps its decoded body (it came from Decode, or KeepBody), its Lines,
// their prices and Customer are shared by every caller: read them, never
// modify them.
func (e *Envelope) StockMove() (StockMove, error) {
	if b, ok := e.body.(*stockBody); ok && sameBytes(b.src, e.Data) {
		return b.m, nil
	}
	return DecodeStockMove(e.Data)
}

// ReservationMove returns the body of a reservation kind, as
// DecodeReservationMove(e.Data) does; see StockMove for what is shared.
func (e *Envelope) ReservationMove() (ReservationMove, error) {
	if b, ok := e.body.(*reservationBody); ok && sameBytes(b.src, e.Data) {
		return b.m, nil
	}
	return DecodeReservationMove(e.Data)
}

// CustomerRef returns the customer a stock move names, as
// DecodeCustomerRef(e.Data) does. A kept one is shared: never modify it.
func (e *Envelope) CustomerRef() CustomerRef {
	if b, ok := e.body.(*stockBody); ok && sameBytes(b.src, e.Data) {
		return b.ref
	}
	return DecodeCustomerRef(e.Data)
}

// KeepBody decodes e's body once, when it is a stock or reservation move
// that e does not keep yet (an envelope that did not come from Decode),
// so that StockMove, ReservationMove and CustomerRef return it without
// decoding it again. A body that does not decode is not kept: they report
// its error. It changes e: call it on an envelope no other goroutine
// reads.
func (e *Envelope) KeepBody() {
	switch b := e.body.(type) {
	case *stockBody:
		if sameBytes(b.src, e.Data) {
			return
		}
	case *reservationBody:
		if sameBytes(b.src, e.Data) {
			return
		}
	}
	e.body = nil
	switch {
	case IsStockDelta(e.Kind) || e.Kind == KindCount:
		b := &stockBody{src: e.Data}
		if unmarshalStockMove(e.Data, &b.m) != nil {
			return
		}
		b.ref = customerRefOf(b.m.Customer)
		e.body = b
	case e.Kind == KindReserve || e.Kind == KindRelease || e.Kind == KindFulfil:
		b := &reservationBody{src: e.Data}
		if unmarshalReservationMove(e.Data, &b.m) != nil {
			return
		}
		e.body = b
	}
}

// keep sets what e keeps from its checks (checkBody): the body decoded
// from e.Data, or nil.
func (e *Envelope) keep(body any) {
	switch b := body.(type) {
	case *stockBody:
		b.src = e.Data
		e.body = b
	case *reservationBody:
		b.src = e.Data
		e.body = b
	default:
		e.body = nil
	}
}

// customerRefOf is DecodeCustomerRef of a body whose customer field's
// bytes are raw.
func customerRefOf(raw json.RawMessage) CustomerRef {
	if len(raw) == 0 || raw[0] != '{' {
		return nil
	}
	var c CustomerRef
	if json.Unmarshal(raw, &c) != nil || len(c) == 0 {
		return nil
	}
	return c
}
