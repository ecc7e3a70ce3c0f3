package downsync

import (
	"slices"
	"time"
)

// View is what a shopper sees for a scanned or typed code: the edge's
// GET /v1/products/{code} and the hub's Digital Link resolver answer it.
type View struct {
	// Code is the code as given; Match how it was understood.
	Code  string `json:"code"`
	Match Match  `json:"match"`
	// Product is the product without its variants; Variants lists them all
	// (sizes, colours) with their stock. Selected is the SKU the code named.
	Product  ProductDoc    `json:"product"`
	Selected string        `json:"selected"`
	Variants []VariantView `json:"variants"`
	Reviews  ReviewSummary `json:"reviews"`
	// AsOf is when the stock shown was last known to be current: at the
	// edge, the moment the cache last caught up with the hub; at the hub,
	// now. The page says "stock as of ..." from it.
	AsOf time.Time `json:"as_of"`
	// Stale is set at the edge when AsOf is older than the agent thinks
	// fresh (it is offline or far behind).
	Stale bool `json:"stale,omitempty"`
}

// VariantView is one variant with its stock.
type VariantView struct {
	VariantDoc
	Stock VariantStock `json:"stock"`
}

// VariantStock is a variant's availability where the shopper might get it.
// A location the cache knows nothing about is absent.
type VariantStock struct {
	Here   *Level  `json:"here,omitempty"`
	Nearby []Level `json:"nearby,omitempty"`
	Online *Level  `json:"online,omitempty"`
}

// Level is the availability of a variant at one location.
type Level struct {
	Location  string `json:"location"`
	Available int64  `json:"available"`
	OnHand    int64  `json:"on_hand"`
	UpdatedMS int64  `json:"updated_ms,omitempty"`
}

// LevelOf turns a stock document into a Level. Availability shown to
// shoppers is never negative: an oversold position has none.
func LevelOf(d StockDoc) Level {
	return Level{Location: d.Location, Available: max(d.Available, 0), OnHand: d.OnHand, UpdatedMS: d.UpdatedMS}
}

// NewView assembles a view from a product, its review summary and a stock
// lookup; stock(location, sku) reports false when it knows nothing.
func NewView(code string, m Match, p ProductDoc, selected string, rev ReviewSummary, here string, nearby []string, online string,
	stock func(location, sku string) (StockDoc, bool)) View {
	v := View{Code: code, Match: m, Product: p, Selected: selected, Reviews: rev}
	v.Product.Variants = nil
	if v.Reviews.ProductID == "" {
		v.Reviews.ProductID = p.ID
	}
	v.Variants = make([]VariantView, 0, len(p.Variants))
	for _, vd := range p.Variants {
		vv := VariantView{VariantDoc: vd}
		if here != "" {
			if d, ok := stock(here, vd.SKU); ok {
				l := LevelOf(d)
				vv.Stock.Here = &l
			}
		}
		for _, n := range nearby {
			if n == here || n == online {
				continue
			}
			if d, ok := stock(n, vd.SKU); ok {
				vv.Stock.Nearby = append(vv.Stock.Nearby, LevelOf(d))
			}
		}
		// The most available nearby store first: that is where to send her.
		slices.SortStableFunc(vv.Stock.Nearby, func(a, b Level) int { return int(b.Available - a.Available) })
		if online != "" {
			if d, ok := stock(online, vd.SKU); ok {
				l := LevelOf(d)
				vv.Stock.Online = &l
			}
		}
		v.Variants = append(v.Variants, vv)
	}
	return v
}
