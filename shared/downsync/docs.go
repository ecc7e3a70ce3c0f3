package downsync

// ProductDoc is a product with every variant and its price: the value of
// ProductKey. A price change republishes the product.
type ProductDoc struct {
	ID        string       `json:"id"`
	Name      string       `json:"name"`
	Brand     string       `json:"brand,omitempty"`
	Category  string       `json:"category,omitempty"`
	ImageURL  string       `json:"image_url,omitempty"`
	Variants  []VariantDoc `json:"variants"`
	Version   int64        `json:"version"`
	UpdatedMS int64        `json:"updated_ms"`
}

// VariantDoc is one sellable variant of a product.
type VariantDoc struct {
	SKU string `json:"sku"`
	// GTINs are GTIN-14s, the primary first.
	GTINs      []string `json:"gtins,omitempty"`
	Name       string   `json:"name,omitempty"`
	Size       string   `json:"size,omitempty"`
	Colour     string   `json:"colour,omitempty"`
	PriceMinor int64    `json:"price_minor"`
	Currency   string   `json:"currency"`
	ImageURL   string   `json:"image_url,omitempty"`
}

// StockDoc is one stock position as the hub reconciled it: the value of
// StockKey.
type StockDoc struct {
	SKU       string `json:"sku"`
	Location  string `json:"location"`
	OnHand    int64  `json:"on_hand"`
	Reserved  int64  `json:"reserved"`
	Available int64  `json:"available"`
	Version   int64  `json:"version"`
	// UpdatedMS is when the hub last changed this position.
	UpdatedMS int64 `json:"updated_ms"`
}

// ReviewSummary aggregates a product's published reviews: the value of
// ReviewKey.
type ReviewSummary struct {
	ProductID string  `json:"product_id"`
	Count     int64   `json:"count"`
	Average   float64 `json:"average"`
	// Distribution counts ratings 1 to 5 (index 0 is one star).
	Distribution [5]int64 `json:"distribution"`
	// Latest holds the newest few published reviews, newest first.
	Latest    []Review `json:"latest,omitempty"`
	Version   int64    `json:"version"`
	UpdatedMS int64    `json:"updated_ms"`
}

// Review is one published review as shoppers see it.
type Review struct {
	Rating   int    `json:"rating"`
	Title    string `json:"title,omitempty"`
	Text     string `json:"text,omitempty"`
	Nickname string `json:"nickname,omitempty"`
	SKU      string `json:"sku,omitempty"`
	Store    string `json:"store,omitempty"`
	AtMS     int64  `json:"at_ms"`
}

// Tick is the value of TickKey.
type Tick struct {
	AtMS int64  `json:"at_ms"`
	Hub  string `json:"hub,omitempty"`
}

// MaxLatestReviews is how many reviews a summary carries.
const MaxLatestReviews = 5

// RecsDoc is a product's top complements, best first: the value of
// RecsKey. The hub learns them from fitting-room visits and baskets
// (products tried or bought together); a product with little history is
// topped up with products of its category and brand.
type RecsDoc struct {
	ProductID   string       `json:"product_id"`
	Complements []Complement `json:"complements"`
	Version     int64        `json:"version"`
	UpdatedMS   int64        `json:"updated_ms,omitempty"`
}

// Complement is one suggested product and the few words that explain it
// ("often tried with", "completes the look").
type Complement struct {
	ProductID string `json:"product_id"`
	Reason    string `json:"reason"`
	Score     int64  `json:"score,omitempty"`
}
