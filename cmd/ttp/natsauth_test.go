package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/decnet/ttp/bus"
)

// writeFile writes data to dir/name and returns the path.
func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// userSeed makes a NATS user NKey and writes its seed to dir/name.
func userSeed(t *testing.T, dir, name string) (path, public string, kp nkeys.KeyPair) {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := kp.Seed()
	public, _ = kp.PublicKey()
	return writeFile(t, dir, name, seed), public, kp
}

// applied applies what natsAuth.options returns to nats.go's default options, so a test reads
// what a connection would use.
func applied(t *testing.T, a natsAuth) nats.Options {
	t.Helper()
	opts, err := a.options()
	if err != nil {
		t.Fatal(err)
	}
	o := nats.GetDefaultOptions()
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			t.Fatal(err)
		}
	}
	return o
}

// TestNATSAuthOptions: each security flag becomes nats.go's own option, and nothing else.
func TestNATSAuthOptions(t *testing.T) {
	dir := t.TempDir()
	seedFile, public, kp := userSeed(t, dir, "user.nk")
	seed, _ := kp.Seed()
	creds := writeFile(t, dir, "user.creds", fmt.Appendf(nil,
		"-----BEGIN NATS USER JWT-----\neyJ0ZXN0Ijp0cnVlfQ.fake.jwt\n------END NATS USER JWT------\n\n-----BEGIN USER NKEY SEED-----\n%s\n------END USER NKEY SEED------\n", seed))
	pki := newTestPKI(t, dir)
	nonce := []byte("server nonce")
	verify := func(t *testing.T, sign func([]byte) ([]byte, error)) {
		sig, err := sign(nonce)
		if err != nil {
			t.Fatal(err)
		}
		if err := kp.Verify(nonce, sig); err != nil {
			t.Errorf("the nonce is not signed with the seed: %v", err)
		}
	}
	for _, tc := range []struct {
		name  string
		a     natsAuth
		check func(t *testing.T, o nats.Options)
	}{
		{"none", natsAuth{}, func(t *testing.T, o nats.Options) {
			if o.User != "" || o.Token != "" || o.Nkey != "" || o.UserJWT != nil || o.Secure {
				t.Errorf("credentials or TLS without a flag: %+v", o)
			}
		}},
		{"user and password", natsAuth{user: "worker", password: "pw"}, func(t *testing.T, o nats.Options) {
			if o.User != "worker" || o.Password != "pw" || o.Token != "" {
				t.Errorf("user %q password %q token %q", o.User, o.Password, o.Token)
			}
		}},
		{"token", natsAuth{token: "s3cret"}, func(t *testing.T, o nats.Options) {
			if o.Token != "s3cret" || o.User != "" {
				t.Errorf("token %q user %q", o.Token, o.User)
			}
		}},
		{"nkey seed", natsAuth{nkey: seedFile}, func(t *testing.T, o nats.Options) {
			if o.Nkey != public || o.SignatureCB == nil {
				t.Fatalf("nkey %q, want %q", o.Nkey, public)
			}
			verify(t, o.SignatureCB)
		}},
		{"credentials file", natsAuth{creds: creds}, func(t *testing.T, o nats.Options) {
			if o.UserJWT == nil || o.SignatureCB == nil {
				t.Fatal("no user JWT callback")
			}
			if jwt, err := o.UserJWT(); err != nil || jwt != "eyJ0ZXN0Ijp0cnVlfQ.fake.jwt" {
				t.Errorf("user JWT %q, %v", jwt, err)
			}
			verify(t, o.SignatureCB)
		}},
		{"CA", natsAuth{ca: pki.ca}, func(t *testing.T, o nats.Options) {
			if !o.Secure || o.RootCAsCB == nil || o.TLSCertCB != nil {
				t.Fatalf("secure %v, root CAs %v, client cert %v", o.Secure, o.RootCAsCB != nil, o.TLSCertCB != nil)
			}
			if pool, err := o.RootCAsCB(); err != nil || !pool.Equal(pki.pool) {
				t.Errorf("root CAs are not the CA file: %v", err)
			}
		}},
		{"CA and client certificate", natsAuth{ca: pki.ca, cert: pki.clientCert, key: pki.clientKey}, func(t *testing.T, o nats.Options) {
			if !o.Secure || o.RootCAsCB == nil || o.TLSCertCB == nil {
				t.Fatalf("secure %v, root CAs %v, client cert %v", o.Secure, o.RootCAsCB != nil, o.TLSCertCB != nil)
			}
			if c, err := o.TLSCertCB(); err != nil || c.Leaf.Subject.CommonName != "ttp client" {
				t.Errorf("client certificate %v, %v", c.Leaf, err)
			}
		}},
		{"inbox prefix", natsAuth{inbox: "_INBOX_worker"}, func(t *testing.T, o nats.Options) {
			if o.InboxPrefix != "_INBOX_worker" {
				t.Errorf("inbox prefix %q", o.InboxPrefix)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.a.check(""); err != nil {
				t.Fatalf("check: %v", err)
			}
			tc.check(t, applied(t, tc.a))
		})
	}
	notSeed := writeFile(t, dir, "not-a-seed", []byte("hello\n"))
	if _, err := (natsAuth{nkey: notSeed}).options(); err == nil || !strings.Contains(err.Error(), "--nats-nkey") {
		t.Errorf("a file without a seed as --nats-nkey: %v, want an error naming the flag", err)
	}
}

// TestNATSAuthCheck: contradictory or incomplete combinations are refused before anything
// connects, naming the flags.
func TestNATSAuthCheck(t *testing.T) {
	dir := t.TempDir()
	f := writeFile(t, dir, "f", []byte("x"))
	for _, tc := range []struct {
		name string
		a    natsAuth
		url  string
		want []string // in the error; none for a valid combination
	}{
		{"creds and nkey", natsAuth{creds: f, nkey: f}, "", []string{"--nats-creds", "--nats-nkey", "choose one"}},
		{"creds and user", natsAuth{creds: f, user: "u", password: "p"}, "", []string{"--nats-creds", "--nats-user"}},
		{"nkey and token", natsAuth{nkey: f, token: "t"}, "", []string{"--nats-nkey", "--nats-token"}},
		{"user and token", natsAuth{user: "u", password: "p", token: "t"}, "", []string{"--nats-user", "--nats-token"}},
		{"password and token", natsAuth{password: "p", token: "t"}, "", []string{"--nats-user", "--nats-token"}},
		{"user without password", natsAuth{user: "u"}, "", []string{"--nats-user needs --nats-password", "TTP_NATS_PASSWORD"}},
		{"password without user", natsAuth{password: "p"}, "", []string{"--nats-password needs --nats-user"}},
		{"cert without key", natsAuth{cert: f}, "", []string{"--nats-cert and --nats-key"}},
		{"key without cert", natsAuth{key: f}, "", []string{"--nats-cert and --nats-key"}},
		{"missing creds file", natsAuth{creds: filepath.Join(dir, "nope")}, "", []string{"--nats-creds", "no such file"}},
		{"missing CA file", natsAuth{ca: filepath.Join(dir, "nope")}, "", []string{"--nats-ca", "no such file"}},
		{"inbox with a wildcard", natsAuth{inbox: "_INBOX.>"}, "", []string{"--nats-inbox"}},
		{"URL credentials and a user", natsAuth{user: "u", password: "p"}, "nats://a:b@127.0.0.1:4222", []string{"carries credentials", "--nats-user", "***@"}},
		{"URL credentials alone", natsAuth{}, "nats://a:b@127.0.0.1:4222", nil},
		{"token alone", natsAuth{token: "t"}, "nats://127.0.0.1:4222", nil},
		{"creds with TLS", natsAuth{creds: f, ca: f, cert: f, key: f}, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.a.check(tc.url)
			if len(tc.want) == 0 {
				if err != nil {
					t.Errorf("check: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("check accepted %+v", tc.a)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), ":b@") {
				t.Errorf("error %q shows the URL's password", err)
			}
		})
	}
}

// TestNATSConnectError: a refusal says "authorization violation" and which flag to set; a TLS
// failure names the TLS flags; the nats.go error stays wrapped.
func TestNATSConnectError(t *testing.T) {
	for _, tc := range []struct {
		name string
		a    natsAuth
		err  error
		want []string
	}{
		{"no credentials", natsAuth{}, nats.ErrAuthorization, []string{"authorization violation", "--nats-user", "--nats-password", "--nats-creds", "TTP_NATS_PASSWORD"}},
		{"refused user", natsAuth{user: "worker", password: "x"}, nats.ErrAuthorization, []string{"authorization violation", "refused --nats-user worker"}},
		{"refused token", natsAuth{token: "x"}, nats.ErrAuthorization, []string{"authorization violation", "refused --nats-token"}},
		{"TLS required", natsAuth{}, nats.ErrSecureConnRequired, []string{"--nats-ca"}},
		{"unknown CA", natsAuth{}, errors.New("tls: failed to verify certificate: x509: certificate signed by unknown authority"), []string{"--nats-ca"}},
		{"no server", natsAuth{}, nats.ErrNoServers, []string{"is `ttp serve` running?"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.a.connectError("rules state", "nats://u:secret@127.0.0.1:4222", tc.err)
			if !errors.Is(err, tc.err) {
				t.Errorf("%v does not wrap %v", err, tc.err)
			}
			for _, w := range append(tc.want, "rules state") {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
	if tok := (natsAuth{token: "s3cret"}).connectError("publish", "nats://x", nats.ErrAuthorization); strings.Contains(tok.Error(), "s3cret") {
		t.Errorf("error %q shows the token", tok)
	}
}

// TestServeRefusesOpenListen: the embedded server on an address beyond loopback does not start
// without credentials, and says what to set; creds, nkey and TLS flags without --nats are
// refused, not ignored; contradictory flags are refused by serve too. Nothing starts: the data
// directory is not created.
func TestServeRefusesOpenListen(t *testing.T) {
	dir := t.TempDir()
	f := writeFile(t, dir, "f", []byte("x"))
	for _, k := range []string{"TTP_NATS", "TTP_NATS_USER", "TTP_NATS_PASSWORD", "TTP_NATS_TOKEN", "TTP_LISTEN", "TTP_CONFIG"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	for i, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"0.0.0.0", []string{"--listen", "0.0.0.0:4299"}, []string{"--listen 0.0.0.0:4299", "--nats-user", "TTP_NATS_PASSWORD", "TTP_NATS_TOKEN"}},
		{"all IPv6", []string{"--listen", "[::]:4299"}, []string{"--listen [::]:4299", "--nats-user"}},
		{"empty host", []string{"--listen", ":4299"}, []string{"--listen :4299", "--nats-user"}},
		{"a public address", []string{"--listen", "192.0.2.10:4299"}, []string{"--listen 192.0.2.10:4299"}},
		{"user without password", []string{"--listen", "0.0.0.0:4299", "--nats-user", "ttp"}, []string{"--nats-user needs --nats-password"}},
		{"creds without --nats", []string{"--nats-creds", f}, []string{"--nats-creds needs --nats"}},
		{"CA without --nats", []string{"--nats-ca", f}, []string{"--nats-ca needs --nats"}},
		{"token and user", []string{"--nats", "nats://127.0.0.1:1", "--nats-token", "t", "--nats-user", "u", "--nats-password", "p"}, []string{"--nats-user and --nats-token"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := filepath.Join(dir, fmt.Sprintf("data%d", i))
			err := runServe(context.Background(), append([]string{"--data", data, "--metrics", ""}, tc.args...), io.Discard, io.Discard)
			if err == nil {
				t.Fatal("serve started")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if _, err := os.Stat(data); !os.IsNotExist(err) {
				t.Errorf("serve started before the check: %s exists", data)
			}
		})
	}
	for _, listen := range []string{"127.0.0.1:4223", "[::1]:4223", "localhost:4223", "127.0.0.2:4223"} {
		if _, err := (natsAuth{}).embedded(listen); err != nil {
			t.Errorf("--listen %s without credentials: %v, want it allowed (loopback)", listen, err)
		}
	}
	for _, a := range []natsAuth{{user: "u", password: "p"}, {token: "t"}} {
		if _, err := a.embedded("0.0.0.0:4223"); err != nil {
			t.Errorf("--listen 0.0.0.0 with %s: %v", a.method(), err)
		}
	}
}

// TestEmbeddedRequiresUser: given --nats-user and --nats-password (or --nats-token) without
// --nats, the embedded server requires them and serve itself connects with them; a client
// without them is refused with "authorization violation" and the flag to set, and the client
// subcommands take them from TTP_NATS_USER and TTP_NATS_PASSWORD (or TTP_NATS_TOKEN).
func TestEmbeddedRequiresUser(t *testing.T) {
	for _, tc := range []struct {
		name   string
		auth   natsAuth
		env    map[string]string
		wrong  nats.Option
		expect string // in the refusal of wrong credentials
	}{
		{"user and password", natsAuth{user: "ttp", password: "embedded-pw"},
			map[string]string{"TTP_NATS_USER": "ttp", "TTP_NATS_PASSWORD": "embedded-pw"}, nats.UserInfo("ttp", "wrong"), "refused --nats-user ttp"},
		{"token", natsAuth{token: "embedded-token"},
			map[string]string{"TTP_NATS_TOKEN": "embedded-token"}, nats.Token("wrong"), "refused --nats-token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{"TTP_NATS", "TTP_NATS_USER", "TTP_NATS_PASSWORD", "TTP_NATS_TOKEN", "TTP_NATS_INBOX"} {
				t.Setenv(k, "")
				os.Unsetenv(k)
			}
			dir := t.TempDir()
			f := testServeFlags(dir, "", unameRulesDir(t, dir))
			f.listen = freeAddr(t)
			f.auth = tc.auth
			d := startInProcess(t, f)
			url := "nats://" + f.listen
			var nc *nats.Conn
			opts, _ := tc.auth.options()
			for start := time.Now(); ; time.Sleep(50 * time.Millisecond) {
				var err error
				if nc, err = nats.Connect(url, opts...); err == nil {
					break
				}
				if time.Since(start) > 60*time.Second {
					t.Fatalf("embedded server not up with the credentials: %v", err)
				}
			}
			defer nc.Close()
			// Wait until the daemon answers control requests.
			for start := time.Now(); ; time.Sleep(50 * time.Millisecond) {
				if _, err := nc.Request("ttp.control.rule.state", []byte(`{"rule":"R0001","get":true}`), 5*time.Second); err == nil {
					break
				}
				if time.Since(start) > 60*time.Second {
					t.Fatal("the daemon does not answer control requests")
				}
			}

			if _, err := nats.Connect(url); !errors.Is(err, nats.ErrAuthorization) {
				t.Errorf("connect without credentials: %v, want an authorization violation", err)
			}
			_, _, err := runTTP(context.Background(), "rules", "state", "R0001", "--nats", url)
			if err == nil || !strings.Contains(err.Error(), "authorization violation") || !strings.Contains(err.Error(), "--nats-user") {
				t.Errorf("ttp rules state without credentials: %v, want an authorization violation naming --nats-user", err)
			}
			if _, err := nats.Connect(url, tc.wrong); !errors.Is(err, nats.ErrAuthorization) {
				t.Errorf("connect with wrong credentials: %v, want an authorization violation", err)
			}
			wrongAuth := tc.auth
			wrongAuth.password, wrongAuth.token = "wrong", map[bool]string{true: "wrong"}[tc.auth.token != ""]
			if _, _, err := (&clientNATS{url: url, auth: wrongAuth}).connect("publish"); err == nil || !strings.Contains(err.Error(), tc.expect) {
				t.Errorf("connect with wrong credentials: %v, want %q", err, tc.expect)
			}

			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			out, errOut, err := runTTP(context.Background(), "rules", "state", "R0001", "--nats", url)
			if err != nil || !strings.HasPrefix(out, "R0001 ") {
				t.Errorf("ttp rules state with credentials from the environment: %v\n%s%s", err, out, errOut)
			}
			nc.Close()
			d.stop(t)
		})
	}
}

// testPKI is a throwaway CA with a server certificate for 127.0.0.1 and a client certificate,
// as PEM files.
type testPKI struct {
	ca, serverCert, serverKey, clientCert, clientKey string
	pool                                             *x509.CertPool
	server                                           tls.Certificate
}

func newTestPKI(t *testing.T, dir string) *testPKI {
	t.Helper()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	writePEM := func(name, typ string, der []byte) string {
		return writeFile(t, dir, name, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
	}
	caKey := key()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ttp test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	p := &testPKI{ca: writePEM("ca.pem", "CERTIFICATE", caDER), pool: x509.NewCertPool()}
	p.pool.AddCert(caCert)
	leaf := func(serial int64, cn string, usage x509.ExtKeyUsage, certFile, keyFile string) (string, string) {
		k := key()
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, _ := x509.MarshalECPrivateKey(k)
		return writePEM(certFile, "CERTIFICATE", der), writePEM(keyFile, "EC PRIVATE KEY", kder)
	}
	p.serverCert, p.serverKey = leaf(2, "127.0.0.1", x509.ExtKeyUsageServerAuth, "server.pem", "server-key.pem")
	p.clientCert, p.clientKey = leaf(3, "ttp client", x509.ExtKeyUsageClientAuth, "client.pem", "client-key.pem")
	if p.server, err = tls.LoadX509KeyPair(p.serverCert, p.serverKey); err != nil {
		t.Fatal(err)
	}
	return p
}

// startAuthServer runs a core NATS server (no JetStream: the connection is what is tested)
// configured by configure.
func startAuthServer(t *testing.T, configure func(*server.Options)) *server.Server {
	t.Helper()
	opts := &server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true}
	configure(opts)
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	t.Cleanup(s.Shutdown)
	return s
}

// TestNATSAuthServers: each way to authenticate, and TLS with a CA (with and without a client
// certificate), against a server that requires it: clientNATS connects with the right flags and
// is refused, with the hint, without them.
func TestNATSAuthServers(t *testing.T) {
	dir := t.TempDir()
	pki := newTestPKI(t, dir)
	seedFile, public, _ := userSeed(t, dir, "user.nk")
	otherSeed, _, _ := userSeed(t, dir, "other.nk")
	tlsConf := func(clientAuth tls.ClientAuthType) *tls.Config {
		return &tls.Config{Certificates: []tls.Certificate{pki.server}, ClientCAs: pki.pool, ClientAuth: clientAuth, MinVersion: tls.VersionTLS12}
	}
	for _, tc := range []struct {
		name      string
		configure func(*server.Options)
		good      natsAuth
		bad       []natsAuth // each refused
		want      string     // in the refusal of bad[0]
	}{
		{"user and password", func(o *server.Options) { o.Username, o.Password = "worker", "pw" },
			natsAuth{user: "worker", password: "pw"}, []natsAuth{{}, {user: "worker", password: "nope"}}, "authorization violation"},
		{"token", func(o *server.Options) { o.Authorization = "tok" },
			natsAuth{token: "tok"}, []natsAuth{{}, {token: "nope"}}, "authorization violation"},
		{"nkey", func(o *server.Options) { o.Nkeys = []*server.NkeyUser{{Nkey: public}} },
			natsAuth{nkey: seedFile}, []natsAuth{{}, {nkey: otherSeed}}, "authorization violation"},
		{"TLS with a CA", func(o *server.Options) { o.TLS, o.TLSConfig, o.TLSTimeout = true, tlsConf(tls.NoClientCert), 10 },
			natsAuth{ca: pki.ca}, []natsAuth{{}}, "--nats-ca"},
		{"mutual TLS", func(o *server.Options) {
			o.TLS, o.TLSVerify, o.TLSConfig, o.TLSTimeout = true, true, tlsConf(tls.RequireAndVerifyClientCert), 10
		}, natsAuth{ca: pki.ca, cert: pki.clientCert, key: pki.clientKey}, []natsAuth{{}, {ca: pki.ca}}, "--nats-ca"},
		{"TLS and a user", func(o *server.Options) {
			o.TLS, o.TLSConfig, o.TLSTimeout = true, tlsConf(tls.NoClientCert), 10
			o.Username, o.Password = "worker", "pw"
		}, natsAuth{ca: pki.ca, user: "worker", password: "pw"}, []natsAuth{{ca: pki.ca}, {user: "worker", password: "pw"}}, "authorization violation"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startAuthServer(t, tc.configure)
			url := s.ClientURL()
			nc, _, err := (&clientNATS{url: url, auth: tc.good}).connect("publish")
			if err != nil {
				t.Fatalf("with %+v: %v", tc.good, err)
			}
			if tc.good.ca != "" && nc.TLSRequired() == false {
				t.Error("connected without TLS")
			}
			if err := nc.Publish("x", nil); err != nil || nc.Flush() != nil {
				t.Errorf("publish: %v", err)
			}
			nc.Close()
			for i, bad := range tc.bad {
				_, _, err := (&clientNATS{url: url, auth: bad}).connect("publish")
				if err == nil {
					t.Errorf("connected with %+v", bad)
					continue
				}
				if i == 0 && !strings.Contains(err.Error(), tc.want) {
					t.Errorf("refusal %q lacks %q", err, tc.want)
				}
			}
		})
	}
}

// TestClientNATSFlags: the client subcommands read their security flags from TTP_NATS_* (the
// names applyConfig gives serve's), a flag beating its variable, and leave their other flags
// alone.
func TestClientNATSFlags(t *testing.T) {
	t.Setenv("TTP_NATS_USER", "env-user")
	t.Setenv("TTP_NATS_PASSWORD", "env-pw")
	t.Setenv("TTP_NATS_INBOX", "_INBOX_env")
	t.Setenv("TTP_DISABLE", "true")
	for _, tc := range []struct {
		name                  string
		args                  []string
		user, password, inbox string
	}{
		{"environment", nil, "env-user", "env-pw", "_INBOX_env"},
		{"flag over environment", []string{"--nats-user", "flag-user", "--nats-inbox", "_INBOX_flag"}, "flag-user", "env-pw", "_INBOX_flag"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("x", flag.ContinueOnError)
			var c clientNATS
			c.register(fs, "NATS URL")
			disable := fs.Bool("disable", false, "")
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			if err := c.resolve(fs); err != nil {
				t.Fatal(err)
			}
			if c.auth.user != tc.user || c.auth.password != tc.password || c.auth.inbox != tc.inbox {
				t.Errorf("auth %+v, want user %q password %q inbox %q", c.auth, tc.user, tc.password, tc.inbox)
			}
			if *disable {
				t.Error("TTP_DISABLE set --disable")
			}
		})
	}
}

// TestNATSCredsServer: a credentials file (user JWT signed by an account the server's trusted
// operator signed, and the user's NKey seed) connects to a server in operator mode; a user
// signed by an account the operator does not know is refused as an authorization violation.
func TestNATSCredsServer(t *testing.T) {
	dir := t.TempDir()
	okp, _ := nkeys.CreateOperator()
	opub, _ := okp.PublicKey()
	oc := jwt.NewOperatorClaims(opub)
	ojwt, err := oc.Encode(okp)
	if err != nil {
		t.Fatal(err)
	}
	oclaims, err := jwt.DecodeOperatorClaims(ojwt)
	if err != nil {
		t.Fatal(err)
	}
	account := func(signer nkeys.KeyPair) (nkeys.KeyPair, string) {
		akp, _ := nkeys.CreateAccount()
		apub, _ := akp.PublicKey()
		ajwt, err := jwt.NewAccountClaims(apub).Encode(signer)
		if err != nil {
			t.Fatal(err)
		}
		return akp, ajwt
	}
	creds := func(name string, akp nkeys.KeyPair) string {
		ukp, _ := nkeys.CreateUser()
		upub, _ := ukp.PublicKey()
		ujwt, err := jwt.NewUserClaims(upub).Encode(akp)
		if err != nil {
			t.Fatal(err)
		}
		seed, _ := ukp.Seed()
		file, err := jwt.FormatUserConfig(ujwt, seed)
		if err != nil {
			t.Fatal(err)
		}
		return writeFile(t, dir, name, file)
	}
	akp, ajwt := account(okp)
	apub, _ := akp.PublicKey()
	resolver := &server.MemAccResolver{}
	if err := resolver.Store(apub, ajwt); err != nil {
		t.Fatal(err)
	}
	s := startAuthServer(t, func(o *server.Options) {
		o.TrustedOperators = []*jwt.OperatorClaims{oclaims}
		o.AccountResolver = resolver
	})
	good := creds("good.creds", akp)
	stranger, _ := nkeys.CreateOperator()
	foreign, _ := account(stranger)
	bad := creds("foreign.creds", foreign)

	nc, _, err := (&clientNATS{url: s.ClientURL(), auth: natsAuth{creds: good}}).connect("rules push")
	if err != nil {
		t.Fatalf("--nats-creds: %v", err)
	}
	if err := nc.Publish("x", nil); err != nil || nc.Flush() != nil {
		t.Errorf("publish: %v", err)
	}
	nc.Close()
	_, _, err = (&clientNATS{url: s.ClientURL(), auth: natsAuth{creds: bad}}).connect("rules push")
	if !errors.Is(err, nats.ErrAuthorization) || !strings.Contains(err.Error(), "refused --nats-creds") {
		t.Errorf("an untrusted user's creds: %v, want an authorization violation naming --nats-creds", err)
	}
}

// TestServeOverTLS: `ttp serve --nats URL --nats-ca CA --nats-cert ... --nats-user ...` joins a
// JetStream server that requires mutual TLS and a user, and tags an event published there.
func TestServeOverTLS(t *testing.T) {
	dir := t.TempDir()
	pki := newTestPKI(t, dir)
	s := startAuthServer(t, func(o *server.Options) {
		o.JetStream, o.StoreDir = true, filepath.Join(dir, "js")
		o.TLS, o.TLSVerify, o.TLSTimeout = true, true, 10
		o.TLSConfig = &tls.Config{Certificates: []tls.Certificate{pki.server}, ClientCAs: pki.pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
		o.Username, o.Password = "worker", "tls-pw"
	})
	auth := natsAuth{ca: pki.ca, cert: pki.clientCert, key: pki.clientKey, user: "worker", password: "tls-pw"}
	nc, js, err := (&clientNATS{url: s.ClientURL(), auth: auth}).connect("test")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	tagged, err := nc.SubscribeSync(bus.SubjectTagged)
	if err != nil {
		t.Fatal(err)
	}
	f := testServeFlags(dir, s.ClientURL(), unameRulesDir(t, dir))
	f.auth = auth
	d := startInProcess(t, f)
	d.waitStreams(t, js)
	if _, err := js.Publish(context.Background(), bus.SubjectFor(bus.DefaultPrefix, "command"),
		[]byte(`{"source_kind":"command","source_id":"tls-1","payload":{"command_text":"uname -a"}}`)); err != nil {
		t.Fatal(err)
	}
	if m, err := tagged.NextMsg(30 * time.Second); err != nil || !strings.Contains(string(m.Data), `"tls-1"`) {
		t.Errorf("no envelope over TLS: %v", err)
	}
	d.stop(t)

	// Without the client certificate the daemon does not start, and says why.
	f.auth.cert, f.auth.key = "", ""
	f.data = filepath.Join(dir, "data2")
	err = serve(context.Background(), f, io.Discard, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil || !strings.Contains(err.Error(), "serve: nats") {
		t.Errorf("serve without the client certificate: %v", err)
	}
}

// TestWarnSecretFlags: serve warns when a password or token came on the command line, and only
// then, naming the variable to use instead.
func TestWarnSecretFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want []string // TTP_ variables named in the log; none for no warning
	}{
		{"password", []string{"--nats-user", "u", "--nats-password", "p"}, []string{"TTP_NATS_PASSWORD"}},
		{"token", []string{"--nats-token", "t"}, []string{"TTP_NATS_TOKEN"}},
		{"user alone", []string{"--nats-user", "u"}, nil},
		{"nothing", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("serve", flag.ContinueOnError)
			var a natsAuth
			a.register(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			warnSecretFlags(fs, slog.New(slog.NewTextHandler(&b, nil)))
			if len(tc.want) == 0 && b.Len() > 0 {
				t.Errorf("warned: %s", b.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(b.String(), w) || !strings.Contains(b.String(), "level=WARN") {
					t.Errorf("log %q lacks a warning naming %s", b.String(), w)
				}
			}
			if strings.Contains(b.String(), "=p ") || strings.Contains(b.String(), "=t ") {
				t.Errorf("the warning shows the secret: %s", b.String())
			}
		})
	}
}
