package main

// How every subcommand that connects to NATS proves who it is and checks whom it talks to: the
// security a NATS deployment already runs (a credentials file, an NKey seed, a user and
// password, a token, TLS with a CA and an optional client certificate), set by the same flags
// and TTP_NATS_* variables on serve, publish, rules state and rules push. The permissions each
// role needs are in bus/SUBJECTS.md#permissions.

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// natsAuth holds the NATS security flags of one subcommand. The zero value connects without
// credentials over plain TCP, which is what the loopback-only embedded server expects.
type natsAuth struct {
	creds, nkey, user, password, token string
	ca, cert, key                      string
	inbox                              string
}

// natsAuthFlags are the flag names natsAuth registers, in the order --help lists them; each
// is also read from TTP_<NAME> (TTP_NATS_PASSWORD for --nats-password) by applyEnv.
var natsAuthFlags = []string{"nats-creds", "nats-nkey", "nats-user", "nats-password", "nats-token", "nats-ca", "nats-cert", "nats-key", "nats-inbox"}

// register adds the security flags to fs. Secrets are best given through the environment or
// a file: a command line is visible to every user of the host (ps, /proc/PID/cmdline).
func (a *natsAuth) register(fs *flag.FlagSet) {
	fs.StringVar(&a.creds, "nats-creds", "", "NATS credentials file (user JWT and NKey seed, as nsc writes it) (TTP_NATS_CREDS)")
	fs.StringVar(&a.nkey, "nats-nkey", "", "file holding a NATS user NKey seed (SU...) (TTP_NATS_NKEY)")
	fs.StringVar(&a.user, "nats-user", "", "NATS user name, with --nats-password; without --nats, the embedded server requires it (TTP_NATS_USER)")
	fs.StringVar(&a.password, "nats-password", "", "NATS password; prefer TTP_NATS_PASSWORD or the config file to the command line, which every local user can read")
	fs.StringVar(&a.token, "nats-token", "", "NATS authorization token; without --nats, the embedded server requires it; prefer TTP_NATS_TOKEN to the command line")
	fs.StringVar(&a.ca, "nats-ca", "", "PEM file of the CA(s) that sign the NATS server's certificate: connect with TLS and verify the server (TTP_NATS_CA)")
	fs.StringVar(&a.cert, "nats-cert", "", "PEM client certificate for NATS TLS (mutual TLS), with --nats-key (TTP_NATS_CERT)")
	fs.StringVar(&a.key, "nats-key", "", "PEM private key of --nats-cert (TTP_NATS_KEY)")
	fs.StringVar(&a.inbox, "nats-inbox", "", `prefix of this client's reply subjects (default "_INBOX"); give each user its own (_INBOX_worker) so that no other user can be allowed to read its replies (TTP_NATS_INBOX)`)
}

// applyEnv fills the named flags of fs that the command line did not set from their TTP_*
// variables, with applyConfig's names. The client subcommands use it for their NATS flags only:
// reading every flag from the environment would let a stray TTP_DISABLE change a rule.
func applyEnv(fs *flag.FlagSet, names ...string) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, name := range names {
		f := fs.Lookup(name)
		if f == nil || set[name] {
			continue
		}
		env := envName(name)
		if v, ok := os.LookupEnv(env); ok {
			if err := f.Value.Set(v); err != nil {
				return fmt.Errorf("config: %s=%q: %w", env, v, err)
			}
		}
	}
	return nil
}

// method names how the client authenticates, for messages: "" when it does not.
func (a natsAuth) method() string {
	switch {
	case a.creds != "":
		return "--nats-creds"
	case a.nkey != "":
		return "--nats-nkey"
	case a.user != "":
		return "--nats-user " + a.user
	case a.token != "":
		return "--nats-token"
	}
	return ""
}

// check refuses contradictory or incomplete combinations, naming the flags, before anything
// connects: nats.go would otherwise pick one silently (a token beside a user is sent as well,
// and the server decides which it reads). urls is the --nats value ("" for the embedded
// server), whose nats://user:pass@host form is credentials too.
func (a natsAuth) check(urls string) error {
	var given []string
	for _, c := range []struct{ name, v string }{{"--nats-creds", a.creds}, {"--nats-nkey", a.nkey}, {"--nats-user", a.user + a.password}, {"--nats-token", a.token}} {
		if c.v != "" {
			given = append(given, c.name)
		}
	}
	if len(given) > 1 {
		return fmt.Errorf("nats: %s: choose one way to authenticate (a creds file holds its own NKey seed; a token is not a password)", strings.Join(given, " and "))
	}
	if a.user != "" && a.password == "" {
		return errors.New("nats: --nats-user needs --nats-password (or TTP_NATS_PASSWORD)")
	}
	if a.password != "" && a.user == "" {
		return errors.New("nats: --nats-password needs --nats-user")
	}
	if (a.cert == "") != (a.key == "") {
		return errors.New("nats: --nats-cert and --nats-key go together: the client certificate and its private key")
	}
	for _, f := range []struct{ name, path string }{{"--nats-creds", a.creds}, {"--nats-nkey", a.nkey}, {"--nats-ca", a.ca}, {"--nats-cert", a.cert}, {"--nats-key", a.key}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			return fmt.Errorf("nats: %s: %w", f.name, err)
		}
	}
	if a.inbox != "" && (strings.ContainsAny(a.inbox, "*> \t") || strings.HasSuffix(a.inbox, ".")) {
		return fmt.Errorf("nats: --nats-inbox %q: want a subject prefix without wildcards, spaces or a final dot (_INBOX_worker)", a.inbox)
	}
	for _, u := range strings.Split(urls, ",") {
		pu, err := url.Parse(strings.TrimSpace(u))
		if err != nil || pu.User == nil || len(given) == 0 {
			continue
		}
		return fmt.Errorf("nats: --nats %s carries credentials and %s is set too: choose one", redact(u), given[0])
	}
	return nil
}

// options returns the nats.go options that apply a: nats.go's own, so that the file formats,
// the NKey signature of the server's nonce and TLS verification are nats.go's and not ours.
func (a natsAuth) options() ([]nats.Option, error) {
	var opts []nats.Option
	switch {
	case a.creds != "":
		opts = append(opts, nats.UserCredentials(a.creds))
	case a.nkey != "":
		o, err := nats.NkeyOptionFromSeed(a.nkey)
		if err != nil {
			return nil, fmt.Errorf("nats: --nats-nkey %s: %w", a.nkey, err)
		}
		opts = append(opts, o)
	case a.user != "":
		opts = append(opts, nats.UserInfo(a.user, a.password))
	case a.token != "":
		opts = append(opts, nats.Token(a.token))
	}
	if a.ca != "" {
		opts = append(opts, nats.RootCAs(a.ca))
	}
	if a.cert != "" {
		opts = append(opts, nats.ClientCert(a.cert, a.key))
	}
	if a.inbox != "" {
		opts = append(opts, nats.CustomInboxPrefix(a.inbox))
	}
	return opts, nil
}

// connectError explains a failed connection: an authorization violation says so plainly and
// names the flags that set credentials; a TLS failure names the TLS flags. err stays wrapped,
// so errors.Is(err, nats.ErrAuthorization) still holds.
func (a natsAuth) connectError(what, url string, err error) error {
	hint := ""
	msg := strings.ToLower(err.Error())
	switch {
	case errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) || errors.Is(err, nats.ErrAuthRevoked) || errors.Is(err, nats.ErrAccountAuthExpired):
		if m := a.method(); m != "" {
			hint = fmt.Sprintf("the server refused %s; check the credentials", m)
		} else {
			hint = "the server requires credentials; set --nats-creds, --nats-nkey, --nats-user with --nats-password, or --nats-token (or TTP_NATS_CREDS, TTP_NATS_NKEY, TTP_NATS_USER and TTP_NATS_PASSWORD, TTP_NATS_TOKEN)"
		}
		return fmt.Errorf("%s: nats %s: authorization violation: %s (%w)", what, redact(url), hint, err)
	case errors.Is(err, nats.ErrSecureConnRequired):
		hint = "the server requires TLS: set --nats-ca (TTP_NATS_CA) to the CA of its certificate, or use a tls:// URL"
	case strings.Contains(msg, "x509") || strings.Contains(msg, "certificate signed by unknown authority"):
		hint = "the server's TLS certificate was not verified: set --nats-ca (TTP_NATS_CA) to the CA that signs it"
	case strings.Contains(msg, "certificate required") || strings.Contains(msg, "bad certificate"):
		hint = "the server wants a client certificate: set --nats-cert and --nats-key (TTP_NATS_CERT, TTP_NATS_KEY)"
	case errors.Is(err, nats.ErrNoServers) && what != "serve":
		hint = "is `ttp serve` running?"
	}
	if hint == "" {
		return fmt.Errorf("%s: nats %s: %w", what, redact(url), err)
	}
	return fmt.Errorf("%s: nats %s: %w (%s)", what, redact(url), err, hint)
}

// isLoopback reports whether host (of --listen) only accepts connections from this machine.
// "" and 0.0.0.0 and :: listen everywhere.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// embedded checks the flags of serve's embedded server (no --nats) and returns what it sets on
// the server's options: it can require the user and password, or the token, that serve itself
// then connects with. Creds, NKey and TLS flags are for joining a server that is set up for
// them, so they are refused here rather than ignored; and an address beyond loopback without
// credentials is refused, since anyone who reaches it could change rule state or read every
// tag.
func (a natsAuth) embedded(listen string) (func(*server.Options), error) {
	for _, f := range []struct{ name, v string }{{"--nats-creds", a.creds}, {"--nats-nkey", a.nkey}, {"--nats-ca", a.ca}, {"--nats-cert", a.cert}} {
		if f.v != "" {
			return nil, fmt.Errorf("serve: %s needs --nats: the embedded server supports --nats-user with --nats-password, or --nats-token", f.name)
		}
	}
	h, _, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("serve: --listen %q: %w", listen, err)
	}
	if a.user == "" && a.token == "" && !isLoopback(h) {
		return nil, fmt.Errorf("serve: --listen %s is reachable beyond this machine and the embedded server would let anyone in: set --nats-user and TTP_NATS_PASSWORD, or TTP_NATS_TOKEN (or listen on 127.0.0.1)", listen)
	}
	return func(o *server.Options) {
		o.Username, o.Password, o.Authorization = a.user, a.password, a.token
	}, nil
}

// asyncErrorLogger logs the errors the server reports on a live connection. A permissions
// violation is the one that matters: the server refuses the publish or subscription and the
// request behind it only times out, so the log line is where an operator learns which subject
// the user's permissions lack (bus/SUBJECTS.md#permissions lists them).
func asyncErrorLogger(log *slog.Logger) nats.ErrHandler {
	return func(_ *nats.Conn, sub *nats.Subscription, err error) {
		args := []any{"err", err}
		if sub != nil {
			args = append(args, "subject", sub.Subject)
		}
		if errors.Is(err, nats.ErrPermissionViolation) {
			log.Error("nats permissions violation: this user may not use the subject; see bus/SUBJECTS.md#permissions", args...)
			return
		}
		log.Warn("nats error", args...)
	}
}

// warnSecretFlags warns when a secret came on the command line, where every local user can
// read it; TTP_NATS_PASSWORD, TTP_NATS_TOKEN or the config file keep it out of sight.
func warnSecretFlags(fs *flag.FlagSet, log *slog.Logger) {
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "nats-password" || f.Name == "nats-token" {
			log.Warn("a secret on the command line is visible to every user of this host (ps); prefer "+envName(f.Name)+" or --config", "flag", "--"+f.Name)
		}
	})
}

// clientNATS is the --nats URL and security flags of a client subcommand (publish, rules
// state, rules push): one definition, so each of them connects the same way.
type clientNATS struct {
	url  string
	auth natsAuth
}

// register adds --nats and the security flags to fs.
func (c *clientNATS) register(fs *flag.FlagSet, urlHelp string) {
	fs.StringVar(&c.url, "nats", defaultNATS(), urlHelp+" (TTP_NATS)")
	c.auth.register(fs)
}

// resolve reads the security flags the command line did not set from TTP_NATS_* and checks
// them; call it after fs.Parse.
func (c *clientNATS) resolve(fs *flag.FlagSet) error {
	if err := applyEnv(fs, natsAuthFlags...); err != nil {
		return err
	}
	return c.auth.check(c.url)
}

// connect connects a client subcommand (what names it in errors) with its flags.
func (c *clientNATS) connect(what string) (*nats.Conn, jetstream.JetStream, error) {
	opts, err := c.auth.options()
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	return connect(what, c.url, c.auth, opts...)
}

// permissionHint adds the connection's last permissions violation to err, which is usually a
// timeout: the server refused the subject and the request waited for a reply that never came.
func permissionHint(nc *nats.Conn, err error) error {
	if last := nc.LastError(); last != nil && errors.Is(last, nats.ErrPermissionViolation) {
		return fmt.Errorf("%w (%v: this user's permissions lack the subject; see bus/SUBJECTS.md#permissions)", err, last)
	}
	return err
}
