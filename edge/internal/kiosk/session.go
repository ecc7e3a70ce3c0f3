package kiosk

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/omnisync/omnisync/shared/events"
)

// CookieName is the session cookie. Its value is the session id, a dot and
// the Unix time (seconds) of the shopper's last action.
const CookieName = "omni_kiosk"

// session is one shopper's visit.
type session struct {
	ID   string
	Last time.Time
}

// newSessionID returns 16 random bytes as base64url: 22 characters of
// [A-Za-z0-9_-], a valid events token.
func newSessionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// readCookie parses the session cookie; ok is false when it is missing or
// malformed.
func readCookie(r *http.Request) (session, bool) {
	c, err := r.Cookie(CookieName)
	if err != nil {
		return session{}, false
	}
	id, ts, found := strings.Cut(c.Value, ".")
	if !found || events.ValidToken(id) != nil || len(id) > events.MaxSessionLen {
		return session{}, false
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sec <= 0 {
		return session{}, false
	}
	return session{ID: id, Last: time.Unix(sec, 0)}, true
}

// session returns the shopper's session for a page request, starting a new
// one when there is none or the last ended (idle too long). With touch the
// request counts as the shopper's activity and the cookie is renewed;
// automatic requests (room refresh, idle return) pass touch false.
func (k *Kiosk) session(w http.ResponseWriter, r *http.Request, touch bool) session {
	now := k.o.Now()
	s, ok := readCookie(r)
	if ok && now.Sub(s.Last) <= k.o.SessionIdle && !s.Last.After(now.Add(time.Minute)) {
		if touch {
			s.Last = now
			k.setCookie(w, r, s)
		}
		return s
	}
	s = session{ID: newSessionID(), Last: now}
	k.setCookie(w, r, s)
	return s
}

// postSession returns the session a form was rendered for: the cookie's,
// when the form's token matches it. A shopper who took long over a review
// keeps her session: the token proves the form was rendered for it. The
// session is renewed as activity.
func (k *Kiosk) postSession(w http.ResponseWriter, r *http.Request) (session, bool) {
	s, ok := readCookie(r)
	if !ok || !hmac.Equal([]byte(r.PostFormValue("csrf")), []byte(k.token(s.ID))) {
		return session{}, false
	}
	s.Last = k.o.Now()
	k.setCookie(w, r, s)
	return s, true
}

func (k *Kiosk) setCookie(w http.ResponseWriter, r *http.Request, s session) {
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: s.ID + "." + strconv.FormatInt(s.Last.Unix(), 10),
		Path: "/kiosk", HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
}

// endSession removes the cookie: the next request starts a new session.
func endSession(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/kiosk", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
}

// token is the session's form token: an HMAC of its id under the kiosk's
// key, so a page from another origin cannot forge a form post.
func (k *Kiosk) token(id string) string {
	m := hmac.New(sha256.New, k.key)
	m.Write([]byte("kiosk form:" + id))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// nonce returns a fresh Content-Security-Policy nonce.
func nonce() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
