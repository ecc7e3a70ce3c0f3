package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/omnisync/omnisync/cloud/internal/auth"
)

// input reads answers from stdin: lines, and passwords without echo when
// stdin is a terminal.
type input struct {
	term *os.File // stdin when it is a terminal
	br   *bufio.Reader
}

func newInput(stdin io.Reader) *input {
	in := &input{br: bufio.NewReader(stdin)}
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		in.term = f
	}
	return in
}

// line reads one line without its end.
func (in *input) line() (string, error) {
	line, err := in.br.ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// secret asks for a password on the terminal without echo, or reads one
// line when stdin is not a terminal (or fromStdin is set).
func (in *input) secret(prompt string, fromStdin bool, stderr io.Writer) (string, error) {
	if in.term != nil && !fromStdin {
		fmt.Fprint(stderr, prompt)
		b, err := term.ReadPassword(int(in.term.Fd()))
		fmt.Fprintln(stderr)
		return string(b), err
	}
	pw, err := in.line()
	if err != nil {
		return "", fmt.Errorf("reading the password from stdin: %w", err)
	}
	return pw, nil
}

func loginCmd(h *hubConn, stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	var user, expires, setup string
	var pwStdin bool
	cmd := &cobra.Command{
		Use:   "login",
		Short: "log in to the hub and keep an API token for the next commands",
		Long: `Asks for the user and password (or takes --user and --password-stdin), gets an
API token from the hub (POST /v1/auth/login) and saves it for this hub URL in
the user's config directory (omnisync/credentials.json, readable by the user
alone). Every later omnictl command to this hub sends it, unless --token or
OMNI_TOKEN names another.

On a hub's first start (without --bootstrap-token) nobody has a password
yet: --setup-token takes the one-time setup token the hub printed ("-": ask
for it, or read it as the first line of stdin with --password-stdin, which
keeps it out of ps and the shell's history), asks for the admin's new password (twice on a terminal; one line with
--password-stdin), sets it (POST /v1/auth/setup) and logs in as the admin.
The token works once: after that it is dead.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			in := newInput(stdin)
			if setup == "-" {
				// Asked for, not named on the command line, where ps and
				// the shell's history would show it until it is used.
				tok, err := in.secret("Setup token: ", pwStdin, stderr)
				if err != nil {
					return err
				}
				if setup = strings.TrimSpace(tok); setup == "" {
					return usageError{errors.New("--setup-token -: no token given")}
				}
			}
			if setup != "" {
				return setupLogin(cmd, h, in, setup, expires, pwStdin, stdout, stderr)
			}
			if user == "" {
				fmt.Fprint(stderr, "User: ")
				line, err := in.line()
				if err != nil || strings.TrimSpace(line) == "" {
					return usageError{errors.New("--user: name the user")}
				}
				user = strings.TrimSpace(line)
			}
			pw, err := in.secret("Password: ", pwStdin, stderr)
			if err != nil {
				return err
			}
			host, _ := os.Hostname()
			var tok auth.TokenView
			req := auth.LoginRequest{User: user, Password: pw, TokenName: "omnictl on " + host, ExpiresIn: expires}
			if err := h.do(cmd.Context(), http.MethodPost, "/v1/auth/login", req, &tok); err != nil {
				return err
			}
			return saveLogin(h, tok, "logged in to", stdout)
		},
	}
	cmd.Flags().StringVar(&setup, "setup-token", "", "the one-time setup token a hub's first start printed (- to be asked for it): set the admin's password and log in")
	cmd.Flags().StringVar(&user, "user", "", "user name (default: ask)")
	cmd.Flags().BoolVar(&pwStdin, "password-stdin", false, "read the password from stdin instead of asking")
	cmd.Flags().StringVar(&expires, "expires-in", "", "token lifetime, e.g. 30d or 12h (default 30d)")
	return cmd
}

// saveLogin keeps tok for this hub and says so.
func saveLogin(h *hubConn, tok auth.TokenView, did string, stdout io.Writer) error {
	creds, err := loadCredentials()
	if err != nil {
		return err
	}
	creds.Hubs[h.URL()] = savedLogin{User: tok.User, Token: tok.Token, TokenID: tok.ID}
	p, err := saveCredentials(creds)
	if err != nil {
		return err
	}
	exp := "never"
	if tok.Expires != nil {
		exp = tok.Expires.Local().Format(time.DateTime)
	}
	fmt.Fprintf(stdout, "%s %s as %s (token %d, expires %s); saved in %s\n", did, h.URL(), tok.User, tok.ID, exp, p)
	return nil
}

// setupLogin is login --setup-token: the admin's first password, set with
// the hub's one-time setup token, then a login.
func setupLogin(cmd *cobra.Command, h *hubConn, in *input, token, expires string, pwStdin bool, stdout, stderr io.Writer) error {
	pw, err := in.secret("New password for the admin: ", pwStdin, stderr)
	if err != nil {
		return err
	}
	if in.term != nil && !pwStdin {
		again, err := in.secret("The same again: ", false, stderr)
		if err != nil {
			return err
		}
		if again != pw {
			return usageError{errors.New("the two passwords differ")}
		}
	}
	host, _ := os.Hostname()
	var tok auth.TokenView
	req := auth.SetupRequest{Token: strings.TrimSpace(token), Password: pw, TokenName: "omnictl on " + host, ExpiresIn: expires}
	if err := h.do(cmd.Context(), http.MethodPost, "/v1/auth/setup", req, &tok); err != nil {
		return err
	}
	return saveLogin(h, tok, "set the admin's password and logged in to", stdout)
}

func logoutCmd(h *hubConn, stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "logout",
		Short: "revoke the saved token of this hub and forget it",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			creds, err := loadCredentials()
			if err != nil {
				return err
			}
			saved, ok := creds.Hubs[h.URL()]
			if !ok {
				fmt.Fprintf(stdout, "not logged in to %s\n", h.URL())
				return nil
			}
			conn := *h
			conn.token = saved.Token
			err = conn.do(cmd.Context(), http.MethodDelete, "/v1/tokens/"+strconv.FormatInt(saved.TokenID, 10), nil, nil)
			delete(creds.Hubs, h.URL())
			if _, serr := saveCredentials(creds); serr != nil {
				return serr
			}
			if err != nil {
				return fmt.Errorf("forgot the token, but the hub did not revoke it: %w", err)
			}
			fmt.Fprintf(stdout, "logged out of %s (token %d revoked)\n", h.URL(), saved.TokenID)
			return nil
		},
	}
}

func whoamiCmd(h *hubConn, stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "whoami",
		Short: "the user, role, stores and scopes of the token omnictl sends",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var me auth.Me
			if err := h.get("/v1/auth/me", &me); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "user    %s\nrole    %s\n", me.User, me.Role)
			if len(me.Stores) > 0 {
				fmt.Fprintf(stdout, "stores  %s\n", strings.Join(me.Stores, ", "))
			}
			scopes := make([]string, len(me.Scopes))
			for i, s := range me.Scopes {
				scopes[i] = string(s)
			}
			fmt.Fprintf(stdout, "scopes  %s\n", strings.Join(scopes, " "))
			return nil
		},
	}
}

func usersCmd(h *hubConn, stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	c := &cobra.Command{Use: "users", Short: "HQ users (admin): list, create, set, disable, enable, passwd"}
	c.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "every user with role, stores and state",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var r struct{ Users []auth.UserView }
			if err := h.get("/v1/users", &r); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "USER\tROLE\tSTORES\tSTATE\tPASSWORD")
			for _, u := range r.Users {
				state := "active"
				if u.Disabled {
					state = "disabled"
				}
				pw := "no"
				if u.HasPassword {
					pw = "yes"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.Name, u.Role, strings.Join(u.Stores, ","), state, pw)
			}
			return tw.Flush()
		},
	})

	var role, stores string
	var pwStdin, noPassword bool
	create := &cobra.Command{
		Use:   "create NAME --role ROLE [--stores S1,S2]",
		Short: "add a user (asks for a password unless --no-password, e.g. for an integration)",
		Long: "Roles: admin, analyst, store_manager (needs --stores), moderator, integration\n" +
			"(no password: give it tokens with 'omnictl tokens create --user NAME --scopes ...').",
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			in := auth.NewUser{Name: args[0], Role: role, Stores: splitComma(stores)}
			if !noPassword {
				pw, err := newInput(stdin).secret("Password for "+args[0]+": ", pwStdin, stderr)
				if err != nil {
					return err
				}
				in.Password = pw
			}
			var u auth.UserView
			if err := h.do(cmd.Context(), http.MethodPost, "/v1/users", in, &u); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "created %s (%s)\n", u.Name, u.Role)
			return nil
		},
	}
	create.Flags().StringVar(&role, "role", "", "admin, analyst, store_manager, moderator or integration (required)")
	create.Flags().StringVar(&stores, "stores", "", "a store manager's stores, comma-separated")
	create.Flags().BoolVar(&pwStdin, "password-stdin", false, "read the password from stdin instead of asking")
	create.Flags().BoolVar(&noPassword, "no-password", false, "no password: the user can only use tokens made for it")
	c.AddCommand(create)

	var setRole, setStores string
	set := &cobra.Command{
		Use:   "set NAME [--role ROLE] [--stores S1,S2]",
		Short: "change a user's role or stores",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			var ch auth.UserChange
			if cmd.Flags().Changed("role") {
				ch.Role = &setRole
			}
			if cmd.Flags().Changed("stores") {
				s := splitComma(setStores)
				ch.Stores = &s
			}
			if ch.Role == nil && ch.Stores == nil {
				return usageError{errors.New("nothing to change: give --role and/or --stores")}
			}
			return patchUser(cmd, h, stdout, args[0], ch)
		},
	}
	set.Flags().StringVar(&setRole, "role", "", "new role")
	set.Flags().StringVar(&setStores, "stores", "", "new stores, comma-separated")
	c.AddCommand(set)

	for _, disable := range []bool{true, false} {
		verb, short := "enable", "let a disabled user in again"
		if disable {
			verb, short = "disable", "lock a user out: ends their sessions, their tokens stop working"
		}
		c.AddCommand(&cobra.Command{
			Use: verb + " NAME", Short: short, Args: usageArgs(cobra.ExactArgs(1)),
			RunE: func(cmd *cobra.Command, args []string) error {
				return patchUser(cmd, h, stdout, args[0], auth.UserChange{Disabled: &disable})
			},
		})
	}

	var passwdStdin bool
	passwd := &cobra.Command{
		Use:   "passwd NAME",
		Short: "set a user's password (ends their sessions)",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			pw, err := newInput(stdin).secret("New password for "+args[0]+": ", passwdStdin, stderr)
			if err != nil {
				return err
			}
			return patchUser(cmd, h, stdout, args[0], auth.UserChange{Password: &pw})
		},
	}
	passwd.Flags().BoolVar(&passwdStdin, "password-stdin", false, "read the password from stdin instead of asking")
	c.AddCommand(passwd)
	return c
}

func patchUser(cmd *cobra.Command, h *hubConn, stdout io.Writer, name string, ch auth.UserChange) error {
	var u auth.UserView
	if err := h.do(cmd.Context(), http.MethodPatch, "/v1/users/"+url.PathEscape(name), ch, &u); err != nil {
		return err
	}
	state := "active"
	if u.Disabled {
		state = "disabled"
	}
	fmt.Fprintf(stdout, "%s: %s %s %s\n", u.Name, u.Role, strings.Join(u.Stores, ","), state)
	return nil
}

func splitComma(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func tokensCmd(h *hubConn, stdout, stderr io.Writer) *cobra.Command {
	c := &cobra.Command{Use: "tokens", Short: "API tokens: list, create, revoke"}
	var all bool
	list := &cobra.Command{
		Use:   "list",
		Short: "your tokens (--all: everyone's, admin), never their secrets",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var r struct{ Tokens []auth.TokenView }
			path := "/v1/tokens"
			if all {
				path += "?all=1"
			}
			if err := h.get(path, &r); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tUSER\tNAME\tSCOPES\tCREATED\tEXPIRES\tLAST USED\tSTATE")
			for _, t := range r.Tokens {
				state := "active"
				switch {
				case t.Revoked != nil:
					state = "revoked"
				case t.Expires != nil && !time.Now().Before(*t.Expires):
					state = "expired"
				}
				scopes := strings.Join(t.Scopes, " ")
				if scopes == "" {
					scopes = "(the user's)"
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.User, t.Name, scopes,
					t.Created.Local().Format(time.DateOnly), optDate(t.Expires), optDate(t.LastUsed), state)
			}
			return tw.Flush()
		},
	}
	list.Flags().BoolVar(&all, "all", false, "every user's tokens (admin)")
	c.AddCommand(list)

	var user, scopes, expires string
	create := &cobra.Command{
		Use:   "create NAME [--scopes 'catalog:write inventory:read'] [--expires-in 90d] [--user U]",
		Short: "mint a token; its secret is printed once and kept nowhere",
		Long: "Scopes: " + scopeList() + ".\n" +
			"'customers:*' stands for every customers scope. Without --scopes the token has\n" +
			"its user's rights (an integration's token must name its scopes).",
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			var t auth.TokenView
			req := auth.NewTokenRequest{Name: args[0], User: user, Scopes: scopes, ExpiresIn: expires}
			if err := h.do(cmd.Context(), http.MethodPost, "/v1/tokens", req, &t); err != nil {
				return err
			}
			fmt.Fprintf(stderr, "token %d for %s, expires %s; store it now, it is not shown again:\n", t.ID, t.User, optDate(t.Expires))
			fmt.Fprintln(stdout, t.Token)
			return nil
		},
	}
	create.Flags().StringVar(&user, "user", "", "owner (admin only; default: you)")
	create.Flags().StringVar(&scopes, "scopes", "", "space- or comma-separated scopes (default: the user's rights)")
	create.Flags().StringVar(&expires, "expires-in", "", "lifetime, e.g. 90d or 720h (default 90d, at most 732d)")
	c.AddCommand(create)

	c.AddCommand(&cobra.Command{
		Use:   "revoke ID",
		Short: "revoke a token at once (yours, or anyone's for an admin)",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil {
				return usageError{fmt.Errorf("ID: %q is not a token id", args[0])}
			}
			if err := h.do(cmd.Context(), http.MethodDelete, "/v1/tokens/"+strconv.FormatInt(id, 10), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "token %d revoked\n", id)
			return nil
		},
	})
	return c
}

func optDate(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return t.Local().Format(time.DateTime)
}

func scopeList() string {
	names := make([]string, len(auth.AllScopes))
	for i, s := range auth.AllScopes {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}
