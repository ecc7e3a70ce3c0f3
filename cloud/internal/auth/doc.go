// Package auth locks the hub's doors: who is asking (an HQ user's browser
// session, or an API token), and whether they may do what they ask.
//
// Identities are users with a role (admin, analyst, store_manager,
// moderator, integration); a role grants a set of scopes, and a store
// manager's store-related scopes reach only their own stores. Browsers
// log in with a password and get a session cookie (HttpOnly, SameSite=Lax,
// Secure over HTTPS, __Host- prefixed then); scripts and integrations
// send "Authorization: Bearer omni_..." tokens, which may narrow their
// user's rights to named scopes, expire, and be revoked.
//
// Every route is registered through a Router with what it needs next to
// it (Public, LoggedIn, Need(scope), Page(scope)); a route that declares
// nothing does not register. A session's state-changing requests must
// carry the session's CSRF token (form field csrf_token or header
// X-CSRF-Token), and every state-changing request made by a browser from
// another origin is refused (Sec-Fetch-Site / Origin).
//
// Guarantees: no secret is stored. Passwords are kept as argon2id hashes;
// sessions and tokens as the SHA-256 of their random secret, so a copy of
// the database lets nobody in. A password reset or disabling a user ends
// the user's sessions at once. A token's lookup is reused for at most
// TokenCacheTTL (2 s), so that the web shop's many calls cost no query
// each: a token revoked or a user disabled through this hub process is
// refused on its next request; through another hub replica, within those
// 2 seconds there. An expired token is refused at once everywhere.
//
// Sharp edges: last-used times of tokens and sessions are written at most
// once a minute, so they are that coarse. Login throttling is per hub
// process, so N replicas allow N times the attempts.
package auth
