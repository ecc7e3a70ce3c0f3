package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// hubConn is how omnictl reaches the hub: its URL and the API token every
// request carries. The token comes from --token, else OMNI_TOKEN, else
// what `omnictl login` saved for that hub URL in the user's config
// directory (credentials.json, mode 0600).
type hubConn struct {
	url   string // --hub
	token string // --token
	http  *http.Client
}

func newHubConn() *hubConn {
	return &hubConn{http: &http.Client{Timeout: 15 * time.Second}}
}

// URL is the hub's base URL without a trailing slash.
func (h *hubConn) URL() string { return strings.TrimRight(h.url, "/") }

// Token is the token to send, "" when there is none.
func (h *hubConn) Token() string {
	if h.token != "" {
		return h.token
	}
	if t := os.Getenv("OMNI_TOKEN"); t != "" {
		return t
	}
	creds, _ := loadCredentials()
	return creds.Hubs[h.URL()].Token
}

// authorize adds the token to req.
func (h *hubConn) authorize(req *http.Request) {
	if t := h.Token(); t != "" {
		req.Header.Set("Authorization", "Bearer "+t)
	}
}

// do sends a JSON request (in may be nil) and decodes a JSON answer into
// out (may be nil). A non-2xx answer is an error carrying the hub's
// message, with a hint to log in when the hub asks who we are.
func (h *hubConn) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	if ctx == nil {
		ctx = context.Background()
	}
	req, err := http.NewRequestWithContext(ctx, method, h.URL()+path, body)
	if err != nil {
		return usageError{fmt.Errorf("hub URL %q: %w", h.url, err)}
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	h.authorize(req)
	resp, err := h.http.Do(req)
	if err != nil {
		return fmt.Errorf("hub unreachable: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return hubError(resp, b)
	}
	if out == nil || len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	return json.Unmarshal(b, out)
}

// hubError turns a refusal into an error a person can act on.
func hubError(resp *http.Response, b []byte) error {
	var e struct{ Error, Field string }
	_ = json.Unmarshal(b, &e)
	msg := e.Error
	if msg == "" {
		msg = string(bytes.TrimSpace(b))
	}
	if e.Field != "" {
		msg += " (" + e.Field + ")"
	}
	if resp.StatusCode == http.StatusUnauthorized {
		msg += "; run 'omnictl login', or pass --token / OMNI_TOKEN"
	}
	return fmt.Errorf("%s: %s", resp.Status, msg)
}

func (h *hubConn) get(path string, out any) error {
	return h.do(context.Background(), http.MethodGet, path, nil, out)
}

// credentials is what `omnictl login` keeps: a token per hub URL.
type credentials struct {
	Hubs map[string]savedLogin `json:"hubs"`
}

type savedLogin struct {
	User    string `json:"user"`
	Token   string `json:"token"`
	TokenID int64  `json:"token_id"`
}

// credentialsPath is credentials.json in the user's config directory
// ($XDG_CONFIG_HOME/omnisync, ~/.config/omnisync).
func credentialsPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "omnisync", "credentials.json"), nil
}

func loadCredentials() (credentials, error) {
	c := credentials{Hubs: map[string]savedLogin{}}
	p, err := credentialsPath()
	if err != nil {
		return c, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("%s: %w", p, err)
	}
	if c.Hubs == nil {
		c.Hubs = map[string]savedLogin{}
	}
	return c, nil
}

// saveCredentials writes c readable by the user alone: the directory
// 0700, the file 0600, replaced atomically.
func saveCredentials(c credentials) (string, error) {
	p, err := credentialsPath()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return "", err
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".credentials-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return "", err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	return p, os.Rename(tmp.Name(), p)
}
