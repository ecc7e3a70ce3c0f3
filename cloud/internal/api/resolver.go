package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/omnisync/omnisync/shared/downsync"
	"github.com/omnisync/omnisync/shared/gs1"
)

// The GS1 Digital Link resolver. Shelf tags and packs printed with our
// domain carry URIs such as https://shop.example.com/01/05012302000003 (a
// GTIN, optionally with /22/{cpv}, /10/{lot}, /21/{serial} and AI
// attributes in the query); a phone that scans one lands here. The
// behaviour follows the GS1-Conformant Resolver Standard (1.1, 1.2):
//
//   - no linkType, or linkType=gs1:defaultLink or gs1:pip: 307 Temporary
//     Redirect to the product page /products/{sku}, passing on the query
//     string (the standard: "by default, SHALL pass on all key=value pairs
//     in the query string of the request URI when redirecting") and adding
//     serial and lot from the path, so the page can show them;
//   - linkType=all, or Accept: application/linkset+json: 200 with the
//     linkset (RFC 9264) as application/linkset+json, whose anchor is the
//     Digital Link URI;
//   - every answer about a known GTIN carries the links in a Link header,
//     plus a rel="linkset" link to the linkset;
//   - a malformed URI or a bad check digit: 400 with the reason ("SHALL
//     extract and syntactically validate the URI and report errors with an
//     HTTP response code of 400"); a valid GTIN we do not sell: 404;
//   - CORS on every answer, and OPTIONS, as the standard requires.
//
// Compressed Digital Link URIs are recognised and refused with 400: the
// current standard dropped compression and gs1 does not decode it.

// GS1 Web Vocabulary link types the resolver offers.
const (
	gs1Voc      = "https://gs1.org/voc/"
	linkDefault = gs1Voc + "defaultLink"
	linkPIP     = gs1Voc + "pip"
	linkReview  = gs1Voc + "review"
)

// LinksetType is the media type of a JSON linkset (RFC 9264).
const LinksetType = "application/linkset+json"

// resolverDL parses request URIs permissively, as older printers wrote
// them: zero-suppressed GTIN-8/12/13, a trailing slash, qualifiers out of
// order, unknown AIs in the query.
var resolverDL = gs1.DLOptions{
	PermitZeroSuppressedGTIN: true, PermitTrailingSlash: true, ReorderQualifiers: true, PermitUnknownAIs: true,
}

// LinkTarget is one link of a linkset.
type LinkTarget struct {
	Href     string   `json:"href"`
	Title    string   `json:"title"`
	Type     string   `json:"type,omitempty"`
	HrefLang []string `json:"hreflang,omitempty"`
}

type typedLink struct {
	rel    string
	target LinkTarget
}

// baseURL is the scheme and host links are built on: the configured
// public URL, never the request's Host or X-Forwarded-* headers.
func (a *API) baseURL(*http.Request) string { return a.o.PublicURL }

func setCORS(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Accept, Accept-Language")
	h.Set("Access-Control-Expose-Headers", "Link, Location, Content-Type")
}

func (a *API) resolverOptions(w http.ResponseWriter, r *http.Request) {
	setCORS(w)
	w.Header().Set("Allow", "GET, HEAD, OPTIONS")
	w.WriteHeader(http.StatusNoContent)
}

// resolve answers GET /01/{gtin}[/22/{cpv}][/10/{lot}][/21/{serial}][?...].
func (a *API) resolve(w http.ResponseWriter, r *http.Request) {
	setCORS(w)
	w.Header().Add("Vary", "Accept")
	base := a.baseURL(r)
	uri := base + r.URL.EscapedPath()
	if r.URL.RawQuery != "" {
		uri += "?" + r.URL.RawQuery
	}
	dl, err := resolverDL.Parse(uri)
	if err == nil && dl.GTIN() == "" {
		err = errors.New("the path names no GTIN (01)")
	}
	if err != nil {
		a.pageErr(w, r, http.StatusBadRequest, "uri", "not a valid GS1 Digital Link URI: "+strings.TrimPrefix(err.Error(), "gs1: "))
		return
	}
	gtin := dl.GTIN()
	sku, ok, err := a.o.Store.SKUByGTIN(r.Context(), gtin)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	var p downsync.ProductDoc
	if ok {
		p, ok, err = a.o.Store.ProductBySKU(r.Context(), sku)
		if err != nil {
			a.internal(w, r, err)
			return
		}
	}
	if !ok {
		a.pageErr(w, r, http.StatusNotFound, "gtin", fmt.Sprintf("not found: GTIN %s is not in our catalog", gtin))
		return
	}
	anchor, err := dl.URI()
	if err != nil {
		anchor = uri
	}
	links := a.links(base, p, sku, dl, r.URL.Query())
	w.Header().Set("Link", linkHeader(links, withQuery(anchor, "linkType=all")))

	lt := dl.LinkType
	if lt == "all" || accepts(r, LinksetType) {
		ctx := map[string]any{"anchor": anchor}
		for _, l := range links {
			prev, _ := ctx[l.rel].([]LinkTarget)
			ctx[l.rel] = append(prev, l.target)
		}
		w.Header().Set("Content-Type", LinksetType)
		w.WriteHeader(http.StatusOK)
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(map[string]any{"linkset": []any{ctx}})
		return
	}
	// A linkType we offer redirects to its link. Any other (none, or one
	// we do not have) redirects to the default link: the standard says
	// "Resolvers SHALL redirect to the default link unless there is
	// information in the request that can be matched against available
	// link metadata to provide a better response" (GS1-Conformant
	// Resolver Standard, request processing), and a link type we lack is
	// no such information. The Link header tells the client what we have.
	target := links[0].target.Href // the default link
	want := linkTypeURI(lt)
	for _, l := range links {
		if l.rel == want {
			target = l.target.Href
			break
		}
	}
	http.Redirect(w, r, target, http.StatusTemporaryRedirect)
}

// links lists what the resolver offers for a product, the default link
// first.
func (a *API) links(base string, p downsync.ProductDoc, sku string, dl gs1.DigitalLink, query url.Values) []typedLink {
	q := url.Values{}
	for k, vs := range query {
		if k != "linkType" {
			q[k] = vs
		}
	}
	if v, ok := dl.AIs.Get("21"); ok {
		q.Set("serial", v)
	}
	if v, ok := dl.AIs.Get("10"); ok {
		q.Set("lot", v)
	}
	page := base + productPagePath(sku)
	if len(q) > 0 {
		page += "?" + q.Encode()
	}
	name := p.Name
	if p.Brand != "" {
		name = p.Brand + " " + p.Name
	}
	lang := []string{"en"}
	return []typedLink{
		{linkDefault, LinkTarget{Href: page, Title: name, Type: "text/html", HrefLang: lang}},
		{linkPIP, LinkTarget{Href: page, Title: "Product information: " + name, Type: "text/html", HrefLang: lang}},
		{linkReview, LinkTarget{Href: page + "#reviews", Title: "Reviews of " + name, Type: "text/html", HrefLang: lang}},
	}
}

// linkTypeURI expands a linkType as written in a request (gs1:pip, or the
// full URI in either GS1 namespace spelling) to the vocabulary URI.
func linkTypeURI(lt string) string {
	for _, prefix := range []string{"gs1:", "https://gs1.org/voc/", "http://gs1.org/voc/", "https://ref.gs1.org/voc/", "http://ref.gs1.org/voc/"} {
		if rest, ok := strings.CutPrefix(lt, prefix); ok {
			return gs1Voc + rest
		}
	}
	return lt
}

// linkHeader renders links (RFC 8288) and a link to the linkset.
func linkHeader(links []typedLink, linkset string) string {
	var b strings.Builder
	for _, l := range links {
		fmt.Fprintf(&b, "<%s>; rel=%q; type=%q", l.target.Href, l.rel, l.target.Type)
		if len(l.target.HrefLang) > 0 {
			fmt.Fprintf(&b, "; hreflang=%q", l.target.HrefLang[0])
		}
		title, ascii := headerTitle(l.target.Title)
		fmt.Fprintf(&b, "; title=\"%s\"", title)
		if !ascii {
			fmt.Fprintf(&b, "; title*=UTF-8''%s", url.PathEscape(l.target.Title))
		}
		b.WriteString(", ")
	}
	fmt.Fprintf(&b, "<%s>; rel=\"linkset\"; type=%q", linkset, LinksetType)
	return b.String()
}

// headerTitle makes a title safe inside a quoted header parameter: ASCII
// only (title* carries the exact text), no quotes or backslashes.
func headerTitle(s string) (string, bool) {
	ascii := true
	var b strings.Builder
	for _, c := range s {
		switch {
		case c >= utf8.RuneSelf:
			ascii = false
			b.WriteByte('?')
		case c < ' ' || c == 0x7f:
		case c == '"' || c == '\\':
			b.WriteByte('\'')
		default:
			b.WriteRune(c)
		}
	}
	return b.String(), ascii
}

func withQuery(uri, q string) string {
	if strings.Contains(uri, "?") {
		return uri + "&" + q
	}
	return uri + "?" + q
}

// accepts reports whether the Accept header names mediaType.
func accepts(r *http.Request, mediaType string) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, _, _ := strings.Cut(part, ";")
		if strings.EqualFold(strings.TrimSpace(mt), mediaType) {
			return true
		}
	}
	return false
}

// compressedLink answers single-segment paths nothing else serves: a
// compressed Digital Link (https://host/{base64url}) gets a 400 that says
// so, anything else a 404.
func (a *API) compressedLink(w http.ResponseWriter, r *http.Request) {
	if gs1.IsCompressedDigitalLink(a.baseURL(r) + r.URL.EscapedPath()) {
		setCORS(w)
		a.pageErr(w, r, http.StatusBadRequest, "uri",
			"compressed GS1 Digital Link URIs are not supported; use the uncompressed form (/01/{gtin}...)")
		return
	}
	a.pageErr(w, r, http.StatusNotFound, "", "not found")
}
