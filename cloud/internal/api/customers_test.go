package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/auth"
	"github.com/omnisync/omnisync/cloud/internal/pii"
	"github.com/omnisync/omnisync/cloud/internal/store"
	"github.com/omnisync/omnisync/shared/events"
	"github.com/omnisync/omnisync/shared/hlc"
	"github.com/omnisync/omnisync/shared/ids"
)

func sendAs(t *testing.T, method, token, url, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if token == "" {
		req.Header.Set("X-Test-Anonymous", "1")
	} else {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// customerAPI serves the API over a store with customers' keys, where
// store S1's till identified Ann (card + e-mail) and store S2's kiosk
// identified Bo (phone), and store S3 exists.
func customerAPI(t *testing.T) (srv string, st *store.Store, svc *auth.Service) {
	t.Helper()
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "hub.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	keys, err := pii.New(pii.Generate())
	if err != nil {
		t.Fatal(err)
	}
	st.SetCustomerKeys(keys)
	wall := time.Now().UnixMilli()
	var items []store.Item
	for i, ev := range []struct {
		store, kind, body string
	}{
		{"S1", "identify", `{"identifiers":{"loyalty":"LC-1","email":"ann@shop.test"}}`},
		{"S1", "update", `{"customer":{"loyalty":"LC-1"},"fields":{"first_name":"Ann"}}`},
		{"S1", "sale", `{"location":"S1","customer":{"loyalty":"LC-1"},"lines":[{"sku":"SKU-1","qty":1,"unit_price":1299}]}`},
		{"S2", "identify", `{"identifiers":{"phone":"+821034561122"}}`},
		{"S3", "receipt", `{"location":"S3","lines":[{"sku":"SKU-1","qty":5}]}`},
	} {
		env := events.Envelope{V: events.CurrentVersion, ID: ids.NewEventID(time.Now()), Kind: events.Kind(ev.kind), Data: json.RawMessage(ev.body),
			Origin: events.Origin{Store: ev.store, Device: "pos-1", Epoch: 1, Seq: uint64(i + 1)}, HLC: hlc.Timestamp{Wall: wall + int64(i)}}
		items = append(items, store.Item{Env: env})
	}
	res, err := st.ApplyBatch(context.Background(), items)
	if err != nil || res.Applied != len(items) {
		t.Fatalf("seed: %+v %v", res, err)
	}
	s, svc := serveAPI(t, st, Options{Store: st}, nil)
	return s.URL, st, svc
}

// integrationToken makes an integration user with the given scopes.
func integrationToken(t *testing.T, svc *auth.Service, name, scopes string) string {
	t.Helper()
	ctx := context.Background()
	if _, err := svc.CreateUser(ctx, auth.NewUser{Name: name, Role: string(auth.Integration)}); err != nil {
		t.Fatal(err)
	}
	admin := auth.NewPrincipal(1, auth.FirstAdmin, auth.Admin, nil, nil)
	_, tok, err := svc.CreateToken(ctx, admin, auth.NewTokenRequest{Name: "shop", User: name, Scopes: scopes})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Ensure that the customer routes answer only whom they should: nobody
// without credentials (401), analysts and moderators never (403), store
// managers only customers who identified at their stores (404 for the
// others), integrations with their scopes, and unmerge and erasure only
// admins.
func TestCustomersAPI_Auth(t *testing.T) {
	url, st, svc := customerAPI(t)
	ctx := context.Background()
	ann, err := st.FindCustomer(ctx, "loyalty:LC-1", "")
	if err != nil {
		t.Fatal(err)
	}
	bo, err := st.FindCustomer(ctx, "phone:+821034561122", "")
	if err != nil {
		t.Fatal(err)
	}
	analyst := tokenFor(t, svc, "ana", auth.Analyst)
	mod := tokenFor(t, svc, "mo", auth.Moderator)
	s1 := tokenFor(t, svc, "sam", auth.StoreManager, "S1")
	shop := integrationToken(t, svc, "webshop", "customers:read customers:write")
	other := integrationToken(t, svc, "erp", "inventory:read")
	routes := []struct{ method, path, body string }{
		{"POST", "/v1/identify", `{"identifiers":{"account":"W-1"}}`},
		{"GET", "/v1/customers?identifier=loyalty:LC-1", ""},
		{"GET", "/v1/customers/" + ann, ""},
		{"POST", "/v1/customers/" + ann + "/consent", `{"purpose":"sms","granted":true}`},
		{"POST", "/v1/customers/" + ann + "/unmerge", `{}`},
		{"POST", "/v1/customers/" + ann + "/erase", `{}`},
		{"GET", "/v1/erasures/" + ann, ""},
	}
	for _, r := range routes {
		if code, _ := sendAs(t, r.method, "", url+r.path, r.body); code != http.StatusUnauthorized {
			t.Errorf("%s %s anonymously: %d, want 401", r.method, r.path, code)
		}
		for name, tok := range map[string]string{"analyst": analyst, "moderator": mod, "integration without customers scopes": other} {
			if code, _ := sendAs(t, r.method, tok, url+r.path, r.body); code != http.StatusForbidden {
				t.Errorf("%s %s as %s: %d, want 403", r.method, r.path, name, code)
			}
		}
	}
	// Store manager of S1: Ann (identified at S1) yes, Bo (at S2) no, as
	// if unknown; no writes.
	if code, m := getAs(t, s1, url+"/v1/customers/"+ann); code != 200 || m["id"] != ann {
		t.Fatalf("S1's manager on Ann: %d %v", code, m)
	}
	if code, _ := getAs(t, s1, url+"/v1/customers/"+bo); code != 404 {
		t.Fatalf("S1's manager on Bo: %d, want 404", code)
	}
	if code, _ := getAs(t, s1, url+"/v1/customers?identifier=phone:%2B821034561122"); code != 404 {
		t.Fatalf("S1's manager finding Bo: %d, want 404", code)
	}
	for _, r := range routes {
		if r.method == "POST" {
			if code, _ := sendAs(t, r.method, s1, url+r.path, r.body); code != http.StatusForbidden {
				t.Errorf("%s %s as a store manager: %d, want 403", r.method, r.path, code)
			}
		}
	}
	// The web shop: identify, find, read, consent; never unmerge or erase.
	code, m := sendAs(t, "POST", shop, url+"/v1/identify", `{"identifiers":{"email":"Ann@Shop.test","account":"W-1"}}`)
	if code != 200 || m["customer"] != ann {
		t.Fatalf("identify: %d %v, want %s", code, m, ann)
	}
	if code, m := getAs(t, shop, url+"/v1/customers?identifier=account:W-1"); code != 200 || m["customer"] != ann {
		t.Fatalf("find by account: %d %v", code, m)
	}
	if code, _ := sendAs(t, "POST", shop, url+"/v1/customers/"+ann+"/consent", `{"purpose":"sms","granted":false,"source":"web","text_version":"v4"}`); code != 200 {
		t.Fatalf("consent: %d", code)
	}
	for _, p := range []string{"/unmerge", "/erase"} {
		if code, _ := sendAs(t, "POST", shop, url+"/v1/customers/"+ann+p, `{}`); code != http.StatusForbidden {
			t.Fatalf("web shop POST %s: %d, want 403", p, code)
		}
	}
}

// Ensure that the customer routes answer what they should to an admin,
// and refuse bad input with the field named, changing nothing.
func TestCustomersAPI_Admin(t *testing.T) {
	url, st, _ := customerAPI(t)
	ctx := context.Background()
	ann, _ := st.FindCustomer(ctx, "email:ann@shop.test", "")
	for _, tt := range []struct {
		method, path, body string
		want               int
		field              string
	}{
		{"POST", "/v1/identify", `{"identifiers":{"passport":"X"}}`, 400, "identifiers.passport"},
		{"POST", "/v1/identify", `{"identifiers":{}}`, 400, "identifiers"},
		{"POST", "/v1/identify", `{"identifiers":{"email":"not an address"}}`, 400, "identifiers"},
		{"POST", "/v1/identify", `{"identifiers":{"email":"a@shop.test"},"extra":1}`, 400, ""},
		{"POST", "/v1/identify", `{"identifiers":{"email":"` + strings.Repeat("a", 70<<10) + `"}}`, 413, ""},
		{"GET", "/v1/customers?identifier=nope", "", 400, "identifier"},
		{"GET", "/v1/customers?identifier=email:nobody@shop.test", "", 404, "identifier"},
		{"GET", "/v1/customers/not-an-id", "", 400, "id"},
		{"GET", "/v1/customers/" + ids.NewEventID(time.Now()), "", 404, "id"},
		{"POST", "/v1/customers/" + ann + "/consent", `{"purpose":"spam","granted":true}`, 400, ""},
		{"POST", "/v1/customers/" + ann + "/unmerge", `{}`, 404, "id"},
		{"GET", "/v1/erasures/" + ids.NewEventID(time.Now()), "", 404, "id"},
	} {
		code, m := sendAs(t, tt.method, adminToken, url+tt.path, tt.body)
		if code != tt.want || tt.field != "" && m["field"] != tt.field {
			t.Errorf("%s %s %.60s: %d %v, want %d field %q", tt.method, tt.path, tt.body, code, m, tt.want, tt.field)
		}
	}
	var n int
	if _, err := st.FindCustomer(ctx, "email:a@shop.test", ""); err == nil {
		t.Fatal("a refused identify linked something")
	}
	_ = n
	// The 360.
	code, m := getAs(t, adminToken, url+"/v1/customers/"+ann)
	if code != 200 {
		t.Fatalf("360: %d %v", code, m)
	}
	b, _ := json.Marshal(m)
	for _, want := range []string{`"value":"LC-1"`, `"value":"ann@shop.test"`, `"first_name":"Ann"`, `"purchases":[{`, `"carts":[]`, `"rule":"identify"`, `"store":"S1"`} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("360 lacks %s: %s", want, b)
		}
	}
	// Erase: every store the hub knows is pending, then done.
	code, m = sendAs(t, "POST", adminToken, url+"/v1/customers/"+ann+"/erase", `{"reason":"asked by e-mail"}`)
	if code != http.StatusAccepted {
		t.Fatalf("erase: %d %v", code, m)
	}
	eid := m["erasure"].(string)
	code, m = getAs(t, adminToken, url+"/v1/erasures/"+eid)
	if code != 200 {
		t.Fatalf("erasure: %d %v", code, m)
	}
	stores := m["stores"].([]any)
	if len(stores) != 3 || stores[0].(map[string]any)["state"] != "pending" || stores[0].(map[string]any)["since"] == nil {
		t.Fatalf("erasure stores: %v", m)
	}
	for _, s := range []string{"S1", "S2", "S3"} {
		if err := st.AckErasure(ctx, s, eid, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	_, m = getAs(t, adminToken, url+"/v1/erasures/"+eid)
	if m["done"] != true || m["stores"].([]any)[2].(map[string]any)["state"] != "done" {
		t.Fatalf("erasure after every store: %v", m)
	}
	if code, _ := getAs(t, adminToken, url+"/v1/customers/"+ann); code != 404 {
		t.Fatalf("erased customer: %d", code)
	}
	// The web shop cannot bring the person back.
	if code, _ := sendAs(t, "POST", adminToken, url+"/v1/identify", `{"identifiers":{"email":"ann@shop.test","account":"W-2"}}`); code != http.StatusConflict {
		t.Fatalf("identify of an erased person: %d, want 409", code)
	}
	_ = fmt.Sprint
}
