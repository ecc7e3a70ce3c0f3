package kiosk

import (
	"context"
	"strconv"
	"strings"

	"github.com/omnisync/omnisync/shared/downsync"
)

// Suggester is what the mirror's suggestions read: the complements the hub
// last published for a product, and products by id. The agent's product
// cache is one; it keeps the last lists, so a store offline still suggests.
type Suggester interface {
	Complements(productID string) (downsync.RecsDoc, bool)
	Product(productID string) (downsync.ProductDoc, bool)
}

// maxSuggestions bounds what a mirror suggests at once.
const maxSuggestions = 4

// suggestion is one product the mirror suggests for the items in the room.
type suggestion struct {
	ProductID, Name, Image, Brand, Price string
	// Why explains it: "Completes the look with Slim jeans".
	Why string
	// With is the SKU of the room item it goes with (the assist's from).
	With string
	// Sizes are the variants in stock here now, in her sizes when it comes
	// in them.
	Sizes []sizeChip
}

type sizeChip struct {
	SKU, Label, Stock string
}

// why words a complement's reason for the item it goes with.
func why(reason, item string) string {
	switch reason {
	case "completes the look":
		return "Completes the look with " + item
	case "often tried with":
		return "Often tried with " + item
	case "often bought together":
		return "Often bought with " + item
	case "same style and brand":
		return "Same style and brand as " + item
	case "":
		return "Goes with " + item
	}
	return strings.ToUpper(reason[:1]) + reason[1:] + " · " + item
}

// suggest picks, for the items in the room (in the order they came in),
// their complements that are in stock in this store now, in the sizes she
// is trying (or, for a product sized otherwise — jeans with shirts — in
// the sizes in stock), at most maxSuggestions, each explained.
func (k *Kiosk) suggest(ctx context.Context, items []roomItem) []suggestion {
	if k.o.Suggest == nil || k.o.Products == nil || len(items) == 0 {
		return nil
	}
	inRoom := map[string]bool{}
	sizes := map[string]bool{}
	for _, it := range items {
		inRoom[it.ProductID] = true
		if it.Size != "" {
			sizes[it.Size] = true
		}
	}
	var out []suggestion
	seen := map[string]bool{}
	// Round robin over the items: each item's best complement first, so
	// one item does not take every slot.
	lists := make([][]downsync.Complement, len(items))
	for i, it := range items {
		if it.ProductID == "" {
			continue
		}
		if d, ok := k.o.Suggest.Complements(it.ProductID); ok {
			lists[i] = d.Complements
		}
	}
	for rank := 0; len(out) < maxSuggestions; rank++ {
		more := false
		for i, it := range items {
			if rank >= len(lists[i]) || len(out) >= maxSuggestions {
				continue
			}
			more = true
			c := lists[i][rank]
			if inRoom[c.ProductID] || seen[c.ProductID] {
				continue
			}
			seen[c.ProductID] = true
			if s, ok := k.suggestion(ctx, c, it, sizes); ok {
				out = append(out, s)
			}
		}
		if !more {
			break
		}
	}
	return out
}

// suggestion builds one suggestion, ok false when nothing of it is in
// stock here in her sizes.
func (k *Kiosk) suggestion(ctx context.Context, c downsync.Complement, with roomItem, sizes map[string]bool) (suggestion, bool) {
	p, ok := k.o.Suggest.Product(c.ProductID)
	if !ok || len(p.Variants) == 0 {
		return suggestion{}, false
	}
	v, err := k.o.Products.Lookup(ctx, p.Variants[0].SKU)
	if err != nil {
		return suggestion{}, false
	}
	s := suggestion{ProductID: p.ID, Name: v.Product.Name, Image: v.Product.ImageURL, Brand: v.Product.Brand,
		Why: why(c.Reason, with.Name), With: with.SKU}
	hasHerSize := false
	for _, vv := range v.Variants {
		if sizes[vv.Size] {
			hasHerSize = true
		}
	}
	for _, vv := range v.Variants {
		h := vv.Stock.Here
		if h == nil || h.Available <= 0 || (hasHerSize && !sizes[vv.Size]) {
			continue
		}
		chip := sizeChip{SKU: vv.SKU, Label: variantLabel(vv.VariantDoc), Stock: "In store"}
		if h.Available <= LowStock {
			chip.Stock = "Only " + strconv.FormatInt(h.Available, 10) + " left"
		}
		if s.Price == "" {
			s.Price = FormatPrice(vv.PriceMinor, vv.Currency)
		}
		if vv.ImageURL != "" && s.Image == "" {
			s.Image = vv.ImageURL
		}
		s.Sizes = append(s.Sizes, chip)
	}
	return s, len(s.Sizes) > 0
}
