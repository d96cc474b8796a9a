package settings

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3client"

	"github.com/logbox/logbox/appliance/atomicfile"
)

// Credentials are an etcd user and password.
type Credentials struct {
	User, Password string
}

// rootRole is etcd's built-in role that may do everything.
const rootRole = "root"

// ReadCredentials reads a credentials file: one line "user:password", the
// form etcdctl --user takes. A file other accounts may read or write is
// refused: it holds the password to every setting.
func ReadCredentials(path string) (Credentials, error) {
	f, err := os.Open(path)
	if err != nil {
		return Credentials{}, fmt.Errorf("etcd credentials: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Credentials{}, fmt.Errorf("etcd credentials: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return Credentials{}, fmt.Errorf("etcd credentials %q: mode %04o lets other accounts read or change the etcd password; run chmod 600 %q", path, perm, path)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return Credentials{}, fmt.Errorf("etcd credentials: %w", err)
	}
	line := strings.TrimSpace(string(b))
	user, pass, ok := strings.Cut(line, ":")
	if !ok || user == "" || pass == "" || strings.ContainsAny(line, "\r\n") {
		return Credentials{}, fmt.Errorf("etcd credentials %q: want one line user:password (what etcdctl --user takes)", path)
	}
	return Credentials{User: user, Password: pass}, nil
}

// loadOrCreateCredentials reads path, or creates it with user root and a
// random password when it does not exist; created says which.
func loadOrCreateCredentials(path string) (c Credentials, created bool, err error) {
	c, err = ReadCredentials(path)
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		return c, false, err
	}
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return c, false, fmt.Errorf("etcd credentials: %w", err)
	}
	c = Credentials{User: "root", Password: base64.RawURLEncoding.EncodeToString(raw)}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return c, false, fmt.Errorf("create etcd credentials %q: %w", path, err)
	}
	if err := atomicfile.Write(path, []byte(c.User+":"+c.Password+"\n")); err != nil {
		return c, false, fmt.Errorf("create etcd credentials %q: %w", path, err)
	}
	return c, true, nil
}

// enableAuth turns etcd authentication on, with creds' user holding the
// root role. It runs while auth is still off, through etcd's in-process
// client, so no request crosses the network. Users and roles other than
// these were made while anyone could make them and are removed.
func enableAuth(e *embed.Etcd, creds Credentials, log *slog.Logger) error {
	cli := v3client.New(e.Server)
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	wrap := func(what string, err error) error {
		return fmt.Errorf("turn on authentication of the embedded etcd: %s: %w", what, err)
	}
	keep := []string{creds.User, "root"}
	users, err := cli.UserList(ctx)
	if err != nil {
		return wrap("list users", err)
	}
	for _, u := range users.Users {
		if slices.Contains(keep, u) {
			continue
		}
		if _, err := cli.UserDelete(ctx, u); err != nil {
			return wrap("remove user "+u, err)
		}
		log.Warn("etcd user removed: it was created while the embedded etcd had no authentication, when any local account could create one", "user", u)
	}
	roles, err := cli.RoleList(ctx)
	if err != nil {
		return wrap("list roles", err)
	}
	for _, r := range roles.Roles {
		if r == rootRole {
			continue
		}
		if _, err := cli.RoleDelete(ctx, r); err != nil {
			return wrap("remove role "+r, err)
		}
		log.Warn("etcd role removed: it was created while the embedded etcd had no authentication", "role", r)
	}
	if !slices.Contains(roles.Roles, rootRole) {
		if _, err := cli.RoleAdd(ctx, rootRole); err != nil {
			return wrap("add role root", err)
		}
	}
	// setUser (re)creates a user so that only the given password (none:
	// no password login at all) opens it.
	setUser := func(name, password string) error {
		if slices.Contains(users.Users, name) {
			if _, err := cli.UserDelete(ctx, name); err != nil {
				return wrap("reset user "+name, err)
			}
		}
		if _, err := cli.UserAddWithOptions(ctx, name, password, &clientv3.UserAddOptions{NoPassword: password == ""}); err != nil {
			return wrap("add user "+name, err)
		}
		if _, err := cli.UserGrantRole(ctx, name, rootRole); err != nil {
			return wrap("grant root to "+name, err)
		}
		return nil
	}
	if err := setUser(creds.User, creds.Password); err != nil {
		return err
	}
	if creds.User != "root" {
		// etcd wants a root user before auth goes on; nobody logs in as it.
		if err := setUser("root", ""); err != nil {
			return err
		}
	}
	if _, err := cli.AuthEnable(ctx); err != nil {
		return wrap("enable", err)
	}
	return nil
}
