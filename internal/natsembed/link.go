package natsembed

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
)

// inProcessUser is the user that Connect authenticates as once the server
// requires credentials. Its password is random for each start, and it may
// only connect in-process, so nothing outside the process can use it.
const inProcessUser = "visitrelay-in-process"

// LinkOptions secure the leafnode link: the hub side (the gateway's
// listeners and the sites it accepts) and the leaf side (how the appliance
// dials out).
type LinkOptions struct {
	// ListenTLS, when set, makes the leafnode listener and the websocket
	// listener accept TLS connections only, with this certificate source.
	ListenTLS *tls.Config
	// WebsocketHost and WebsocketPort open a websocket listener that takes
	// leafnode connections, for sites whose firewall lets only HTTPS out.
	// WebsocketPort 0 opens none; -1 picks a free port. Without ListenTLS
	// the websocket listener runs without TLS.
	WebsocketHost string
	WebsocketPort int
	// Sites are the leafnode users that the hub accepts. When the list is
	// empty, any leafnode may connect without credentials. When it is not,
	// every connection must authenticate: leafnodes as a site, and the
	// process's own in-process clients as inProcessUser.
	Sites []Site

	// RemoteTLS, when set, is the TLS configuration for dialing the hub:
	// its root CAs verify the hub's certificate. When it is nil, TLS is
	// still used if the URL scheme is tls or wss, or if the hub requires
	// it, with the system's root CAs.
	RemoteTLS *tls.Config
	// RemoteSeed is the nkey seed (starting with SU) whose public key the
	// hub lists for this site. The leaf signs the hub's nonce with it.
	RemoteSeed string
	// RemoteProxy is the URL of an HTTP proxy, such as
	// http://proxy.example.com:3128, that the link is dialed through.
	RemoteProxy string
}

// Site is one site's leafnode credentials and what it may touch.
type Site struct {
	// Nkey is the site's public user nkey (starting with U). The site
	// proves it holds the seed by signing a nonce; no secret crosses the
	// link.
	Nkey string
	// Username and PasswordHash are the alternative to Nkey: the bcrypt
	// hash of the password that the site sends.
	Username     string
	PasswordHash string
	// Permissions restrict what the site publishes into the hub and what
	// it receives from it, from the site's point of view (publish is what
	// the site sends).
	Permissions *server.Permissions
}

// applyLink sets the link's TLS, credentials, websocket and proxy options.
func applyLink(sopts *server.Options, link LinkOptions) {
	// Replies to the server's own JetStream API requests across the link
	// carry the domain, stream and consumer ($JSC.R.<domain>.<account
	// hash>.<stream>.<consumer>.<id>), so that a site's leafnode
	// permissions can name them. nats-server v2.15.3 documents the flag as
	// safe to enable on the requesting server alone.
	sopts.FeatureFlags = map[string]bool{server.FeatureFlagJsAPIReplyFormatV2: true}
	if link.ListenTLS != nil && sopts.LeafNode.Port != 0 {
		sopts.LeafNode.TLSConfig = link.ListenTLS
		sopts.LeafNode.TLSTimeout = 5
	}
	if link.WebsocketPort != 0 {
		sopts.Websocket.Host = link.WebsocketHost
		sopts.Websocket.Port = link.WebsocketPort
		sopts.Websocket.TLSConfig = link.ListenTLS
		sopts.Websocket.NoTLS = link.ListenTLS == nil
		sopts.Websocket.HandshakeTimeout = 5 * time.Second
	}
	applySites(sopts, link.Sites)

	for _, remote := range sopts.LeafNode.Remotes {
		remote.Nkey = link.RemoteSeed
		remote.Proxy.URL = link.RemoteProxy
		if link.RemoteTLS != nil {
			remote.TLS = true
			remote.TLSConfig = link.RemoteTLS
			remote.TLSTimeout = 5
		}
		for _, u := range remote.URLs {
			if u.Scheme == "tls" || u.Scheme == "wss" {
				remote.TLS = true
			}
		}
	}
}

// applySites turns on authentication when there are sites: each site may
// connect only as a leafnode, and the in-process user only in-process.
func applySites(sopts *server.Options, sites []Site) {
	if len(sites) == 0 {
		return
	}
	leafOnly := jwt.StringList{jwt.ConnectionTypeLeafnode, jwt.ConnectionTypeLeafnodeWS}
	for _, site := range sites {
		if site.Nkey != "" {
			sopts.Nkeys = append(sopts.Nkeys, &server.NkeyUser{
				Nkey:                   site.Nkey,
				Permissions:            site.Permissions,
				AllowedConnectionTypes: toSet(leafOnly),
			})
			continue
		}
		sopts.Users = append(sopts.Users, &server.User{
			Username:               site.Username,
			Password:               site.PasswordHash,
			Permissions:            site.Permissions,
			AllowedConnectionTypes: toSet(leafOnly),
		})
	}
	password := randomPassword()
	// The server keeps only the bcrypt hash; nats-server warns about plain
	// passwords in its options.
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		panic(fmt.Sprintf("hash in-process password: %v", err))
	}
	sopts.Users = append(sopts.Users, &server.User{
		Username:               inProcessUser,
		Password:               string(hash),
		AllowedConnectionTypes: toSet(jwt.StringList{jwt.ConnectionTypeInProcess}),
	})
	inProcessPasswords.Store(sopts, password)
}

// inProcessPasswords maps a server's options to the plain password of its
// in-process user, for Connect.
var inProcessPasswords sync.Map

// inProcessCredentials returns the user and password that Connect sends:
// empty when the server requires no credentials.
func inProcessCredentials(sopts *server.Options) (string, string) {
	password, ok := inProcessPasswords.Load(sopts)
	if !ok {
		return "", ""
	}
	return inProcessUser, password.(string)
}

func toSet(list jwt.StringList) map[string]struct{} {
	set := make(map[string]struct{}, len(list))
	for _, s := range list {
		set[s] = struct{}{}
	}
	return set
}

func randomPassword() string {
	b := make([]byte, 24)
	// crypto/rand.Read never returns an error on Linux (Go 1.24 and later).
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
