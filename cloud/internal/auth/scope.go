package auth

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Scope names one thing a caller may do. Roles grant sets of scopes; an
// API token may narrow its user's to a few.
type Scope string

// The scopes. The one marked "reserved" guards an API that is coming
// (events posted by integrations); it can be granted now so integrations
// are set up once.
const (
	StoresRead      Scope = "stores:read"      // GET /v1/stores, the dashboard
	InventoryRead   Scope = "inventory:read"   // GET /v1/inventory...
	InventoryWrite  Scope = "inventory:write"  // PUT /v1/inventory/{sku}/safety
	ConflictsRead   Scope = "conflicts:read"   // GET /v1/conflicts
	ConflictsAct    Scope = "conflicts:act"    // act on conflicts: transfers, re-sourcing, cancelling, dismissing
	DeadLettersRead Scope = "deadletters:read" // GET /v1/deadletters, GET /v1/exceptions
	ExceptionsWrite Scope = "exceptions:write" // map, replay, discard exceptions; replay dead letters
	CatalogRead     Scope = "catalog:read"     // GET /v1/catalog, /v1/products/{code}
	CatalogWrite    Scope = "catalog:write"    // POST /v1/catalog/import
	ReviewsRead     Scope = "reviews:read"     // GET /v1/products/{id}/reviews (with moderation status)
	ReviewsModerate Scope = "reviews:moderate" // review decisions and the moderation policy: POST /v1/reviews/{event_id}/moderation, PUT /v1/settings/reviews, /moderation
	EventsWrite     Scope = "events:write"     // reserved
	CustomersRead   Scope = "customers:read"   // GET /v1/customers..., the customers page
	CustomersWrite  Scope = "customers:write"  // POST /v1/identify, consent through the API
	CustomersAdmin  Scope = "customers:admin"  // unmerge, erase, erasure states
	CartsRead       Scope = "carts:read"       // GET /v1/carts/{id}, its QR code
	CartsWrite      Scope = "carts:write"      // the web shop's carts: create, set lines, claim, check out
	FittingRead     Scope = "fitting:read"     // GET /v1/fitting/tryons, the try-on page
	MetricsRead     Scope = "metrics:read"     // GET /metrics
	InsightsRead    Scope = "insights:read"    // survey scores, segments, AOV, CLV (aggregates; comments redacted)
	SurveysWrite    Scope = "surveys:write"    // PUT /v1/surveys/{id}
	AutomationRead  Scope = "automation:read"  // automation rules, runs, deliveries, dead letters
	AutomationWrite Scope = "automation:write" // PUT, DELETE /v1/automation/rules/{id}
	UsersAdmin      Scope = "users:admin"      // users and everyone's tokens
)

// AllScopes lists every scope, in the order documentation shows them.
var AllScopes = []Scope{
	StoresRead, InventoryRead, InventoryWrite, ConflictsRead, ConflictsAct, DeadLettersRead, ExceptionsWrite, CatalogRead, CatalogWrite,
	ReviewsRead, ReviewsModerate, EventsWrite, CustomersRead, CustomersWrite, CustomersAdmin, CartsRead, CartsWrite,
	FittingRead, MetricsRead, InsightsRead, SurveysWrite, AutomationRead, AutomationWrite, UsersAdmin,
}

// Role is what an HQ user is.
type Role string

// The roles.
const (
	// Admin may do everything, including managing users and tokens.
	Admin Role = "admin"
	// Analyst reads everything HQ sees, changes nothing.
	Analyst Role = "analyst"
	// StoreManager reads (and, as APIs come, acts) for their named stores
	// only: stores, inventory, conflicts and dead letters are filtered to
	// them. A store's location id is its store id.
	StoreManager Role = "store_manager"
	// Moderator reads reviews with their moderation status.
	Moderator Role = "moderator"
	// Integration is a machine (the web shop, an ERP): its tokens carry the
	// scopes it was given, from the integration set.
	Integration Role = "integration"
)

// Roles lists the roles.
var Roles = []Role{Admin, Analyst, StoreManager, Moderator, Integration}

// roleScopes is what each role may do.
var roleScopes = map[Role][]Scope{
	Admin: AllScopes,
	Analyst: {StoresRead, InventoryRead, ConflictsRead, DeadLettersRead, CatalogRead, ReviewsRead, FittingRead, MetricsRead,
		InsightsRead, AutomationRead},
	StoreManager: {StoresRead, InventoryRead, InventoryWrite, ConflictsRead, DeadLettersRead, CatalogRead, CustomersRead, FittingRead},
	Moderator:    {CatalogRead, ReviewsRead, ReviewsModerate, InsightsRead},
	Integration: {StoresRead, InventoryRead, CatalogRead, CatalogWrite, ReviewsRead, EventsWrite,
		CustomersRead, CustomersWrite, CartsRead, CartsWrite, MetricsRead, AutomationRead, AutomationWrite},
}

// storeScoped lists the scopes whose data a store manager sees only for
// their stores.
var storeScoped = []Scope{StoresRead, InventoryRead, InventoryWrite, ConflictsRead, DeadLettersRead, CustomersRead, FittingRead}

// ScopesOf returns the scopes role grants.
func ScopesOf(role Role) []Scope { return slices.Clone(roleScopes[role]) }

// ParseRole checks a role name.
func ParseRole(s string) (Role, error) {
	r := Role(s)
	if _, ok := roleScopes[r]; !ok {
		return "", fmt.Errorf("%w: role %q (one of %s)", ErrInvalid, s, joinRoles())
	}
	return r, nil
}

func joinRoles() string {
	names := make([]string, len(Roles))
	for i, r := range Roles {
		names[i] = string(r)
	}
	return strings.Join(names, ", ")
}

// ParseScopes reads scope names separated by spaces or commas; "x:*"
// stands for every scope under x (customers:* is customers:read and
// customers:write). The result is sorted and without duplicates.
func ParseScopes(s string) ([]Scope, error) {
	var out []Scope
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		if prefix, ok := strings.CutSuffix(f, ":*"); ok {
			n := len(out)
			for _, sc := range AllScopes {
				if strings.HasPrefix(string(sc), prefix+":") {
					out = append(out, sc)
				}
			}
			if len(out) == n {
				return nil, fmt.Errorf("%w: scope %q matches no scope", ErrInvalid, f)
			}
			continue
		}
		if !slices.Contains(AllScopes, Scope(f)) {
			return nil, fmt.Errorf("%w: unknown scope %q", ErrInvalid, f)
		}
		out = append(out, Scope(f))
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return slices.Compact(out), nil
}

// Principal is who a request comes from, as authenticated.
type Principal struct {
	UserID int64
	User   string
	Role   Role
	// stores are a store manager's stores; nil for everyone else.
	stores []string
	// scopes narrows the role's (an API token's scopes); nil: the role's.
	scopes []Scope
	// TokenID is the API token the request carried, 0 for a session.
	TokenID int64
	// csrf is the session's CSRF token ("" for API tokens).
	csrf string
}

// NewPrincipal builds a principal (tests and the session/token lookups).
// stores only counts for a store manager; scopes, when not nil, narrows
// the role's scopes.
func NewPrincipal(userID int64, user string, role Role, stores []string, scopes []Scope) *Principal {
	p := &Principal{UserID: userID, User: user, Role: role, scopes: scopes}
	if role == StoreManager {
		p.stores = append([]string{}, stores...)
	}
	return p
}

// Can reports whether p has scope s.
func (p *Principal) Can(s Scope) bool {
	if p == nil || !slices.Contains(roleScopes[p.Role], s) {
		return false
	}
	return p.scopes == nil || slices.Contains(p.scopes, s)
}

// Scopes lists what p may do.
func (p *Principal) Scopes() []Scope {
	var out []Scope
	for _, s := range roleScopes[p.Role] {
		if p.Can(s) {
			out = append(out, s)
		}
	}
	return out
}

// Stores returns the stores p's store-related reads are limited to, and
// whether they are limited at all (false: every store).
func (p *Principal) Stores() ([]string, bool) {
	if p == nil || p.Role != StoreManager {
		return nil, false
	}
	return slices.Clone(p.stores), true
}

// MayStore reports whether p may see store (a location id).
func (p *Principal) MayStore(store string) bool {
	stores, limited := p.Stores()
	return !limited || slices.Contains(stores, store)
}

// CSRFToken is the token the session's forms must send back; "" when p
// came with an API token.
func (p *Principal) CSRFToken() string {
	if p == nil {
		return ""
	}
	return p.csrf
}
