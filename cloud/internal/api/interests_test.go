package api

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/auth"
	"github.com/omnisync/omnisync/cloud/internal/catalog"
	"github.com/omnisync/omnisync/cloud/internal/store"
	"github.com/omnisync/omnisync/shared/gs1"
	"github.com/omnisync/omnisync/shared/ids"
)

// gtin completes a GTIN-14 body with its check digit.
func gtin(t *testing.T, body string) string {
	t.Helper()
	cd, err := gs1.CheckDigit(body)
	if err != nil {
		t.Fatal(err)
	}
	return body + string(cd)
}

// Ensure that the web shop (an integration with customers:write) records
// a shopper's interest in an item, which the back-in-stock trigger then
// finds; that nobody else may (401 anonymously; 403 for analysts, store
// managers and integrations without the scope); that bad bodies are
// refused with the field named and store nothing; and that an unknown or
// erased customer answers 404 as on the other customer routes, nothing
// stored.
func TestCustomersAPI_Interests(t *testing.T) {
	url, st, svc := customerAPI(t)
	ctx := context.Background()
	if _, err := st.ImportCatalog(ctx, []catalog.Variant{
		{SKU: "SKU-1", ProductID: "P1", GTINs: []string{gtin(t, "0599999000001")}, Name: "Tee", PriceMinor: 1299, Currency: "EUR"},
		{SKU: "SKU-2", ProductID: "P2", GTINs: []string{gtin(t, "0599999000002")}, Name: "Cap", PriceMinor: 999, Currency: "EUR"},
	}, store.ImportOptions{Source: "test"}); err != nil {
		t.Fatal(err)
	}
	ann, err := st.FindCustomer(ctx, "loyalty:LC-1", "")
	if err != nil {
		t.Fatal(err)
	}
	bo, err := st.FindCustomer(ctx, "phone:+821034561122", "")
	if err != nil {
		t.Fatal(err)
	}
	shop := integrationToken(t, svc, "webshop", "customers:write")
	reader := integrationToken(t, svc, "crm", "customers:read")
	analyst := tokenFor(t, svc, "ana", auth.Analyst)
	s1 := tokenFor(t, svc, "sam", auth.StoreManager, "S1")
	path := func(id string) string { return url + "/v1/customers/" + id + "/interests" }
	viewed := `{"sku":"SKU-1","kind":"viewed"}`
	since := time.Now().Add(-time.Minute)
	interested := func(sku string) []string {
		t.Helper()
		got, err := st.InterestedIn(ctx, sku, since)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}

	if code, _ := sendAs(t, "POST", "", path(ann), viewed); code != http.StatusUnauthorized {
		t.Errorf("anonymously: %d, want 401", code)
	}
	for name, tok := range map[string]string{"analyst": analyst, "store manager": s1, "integration with customers:read only": reader} {
		if code, _ := sendAs(t, "POST", tok, path(ann), viewed); code != http.StatusForbidden {
			t.Errorf("as %s: %d, want 403", name, code)
		}
	}
	if got := interested("SKU-1"); got != nil {
		t.Fatalf("refused callers stored %v", got)
	}

	for _, tt := range []struct {
		id, body string
		want     int
		field    string
	}{
		{ann, `{"sku":"SKU-1","kind":"liked"}`, 400, "kind"},
		{ann, `{"sku":"SKU-1"}`, 400, "kind"},
		{ann, `{"kind":"viewed"}`, 400, "sku"},
		{ann, `{"sku":"SKU 1","kind":"viewed"}`, 400, "sku"},
		{ann, `{"sku":"` + strings.Repeat("X", 65) + `","kind":"viewed"}`, 400, "sku"},
		{ann, `{"sku":"SKU-404","kind":"viewed"}`, 400, "sku"},
		{ann, `{"sku":"SKU-1","kind":"viewed","customer":"x"}`, 400, ""},
		{ann, `{"sku":`, 400, ""},
		{ann, ``, 400, ""},
		{ann, `{"sku":"SKU-1","kind":"viewed","pad":"` + strings.Repeat("x", 2<<10) + `"}`, 413, ""},
		{"not-an-id", viewed, 400, "id"},
		{ids.NewEventID(time.Now()), viewed, 404, "id"},
	} {
		code, m := sendAs(t, "POST", shop, path(tt.id), tt.body)
		if code != tt.want || tt.field != "" && m["field"] != tt.field {
			t.Errorf("%.40s %.60s: %d %v, want %d field %q", tt.id, tt.body, code, m, tt.want, tt.field)
		}
	}
	if got := slices.Concat(interested("SKU-1"), interested("SKU-404")); got != nil {
		t.Fatalf("refused bodies stored %v", got)
	}

	// The web shop: Ann viewed SKU-1, Bo asked to be told about it; an
	// admin may too.
	for _, r := range []struct{ tok, id, body string }{
		{shop, ann, viewed}, {shop, ann, viewed}, {shop, bo, `{"sku":"SKU-1","kind":"notify_me"}`}, {adminToken, bo, `{"sku":"SKU-2","kind":"viewed"}`},
	} {
		if code, m := sendAs(t, "POST", r.tok, path(r.id), r.body); code != http.StatusNoContent {
			t.Fatalf("%s %s: %d %v", r.id, r.body, code, m)
		}
	}
	want := []string{ann, bo}
	slices.Sort(want)
	if got := interested("SKU-1"); !slices.Equal(got, want) {
		t.Fatalf("interested in SKU-1: %v, want %v", got, want)
	}
	if code, m := getAs(t, shop, url+"/v1/customers/"+ann); code != http.StatusForbidden {
		t.Fatalf("the write-only shop read a customer: %d %v", code, m)
	}
	if code, m := getAs(t, adminToken, url+"/v1/customers/"+ann); code != 200 || len(m["interests"].([]any)) != 1 {
		t.Fatalf("Ann's 360: %d %v", code, m["interests"])
	}

	// Ann is erased: her interest goes, and a new one answers as for an
	// unknown customer, storing nothing.
	if code, m := sendAs(t, "POST", adminToken, url+"/v1/customers/"+ann+"/erase", `{}`); code != http.StatusAccepted {
		t.Fatalf("erase: %d %v", code, m)
	}
	if code, m := sendAs(t, "POST", shop, path(ann), viewed); code != http.StatusNotFound || m["field"] != "id" {
		t.Fatalf("an interest of the erased customer: %d %v, want 404", code, m)
	}
	if got := interested("SKU-1"); !slices.Equal(got, []string{bo}) {
		t.Fatalf("interested in SKU-1 after the erasure: %v, want only Bo", got)
	}
}
