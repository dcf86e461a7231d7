package gateway

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// fileCertificate serves a certificate and key from PEM files and reloads
// them when the certificate file changes, so a renewed pair needs no
// restart. The file is checked at most once a minute.
type fileCertificate struct {
	certFile, keyFile string

	mu        sync.Mutex
	cert      *tls.Certificate
	modTime   time.Time
	checkedAt time.Time
}

func (f *fileCertificate) load() (*tls.Certificate, error) {
	info, err := os.Stat(f.certFile)
	if err != nil {
		return nil, fmt.Errorf("read tls certificate: %w", err)
	}
	cert, err := tls.LoadX509KeyPair(f.certFile, f.keyFile)
	if err != nil {
		return nil, fmt.Errorf("load tls certificate %s and key %s: %w", f.certFile, f.keyFile, err)
	}
	f.cert, f.modTime, f.checkedAt = &cert, info.ModTime(), time.Now()
	return f.cert, nil
}

func (f *fileCertificate) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if time.Since(f.checkedAt) < time.Minute {
		return f.cert, nil
	}
	f.checkedAt = time.Now()
	info, err := os.Stat(f.certFile)
	if err != nil || info.ModTime().Equal(f.modTime) {
		// A file that is briefly missing while it is replaced keeps the
		// old certificate in service.
		return f.cert, nil
	}
	previous := f.cert
	if _, err := f.load(); err != nil {
		f.cert = previous
		return previous, nil
	}
	return f.cert, nil
}

// setupSelfSigned loads the self-signed certificate from dir, or creates
// one valid for ten years. It is kept across restarts so that a site that
// pinned it keeps trusting the gateway.
func (s *tlsService) setupSelfSigned(dir string) error {
	certFile, keyFile := filepath.Join(dir, "self-signed.crt"), filepath.Join(dir, "self-signed.key")
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if errors.Is(err, fs.ErrNotExist) {
		cert, err = createSelfSigned(certFile, keyFile, selfSignedNames(s.cfg.Names))
	}
	if err != nil {
		return fmt.Errorf("load self-signed certificate from %s: %w", dir, err)
	}
	s.config = &tls.Config{Certificates: []tls.Certificate{cert}}
	sum := sha256.Sum256(cert.Certificate[0])
	s.logger.Warn("tls uses a self-signed certificate; phones and sites must trust it explicitly",
		"cert_file", certFile, "sha256_fingerprint", fingerprint(sum[:]))
	return nil
}

func selfSignedNames(names []string) []string {
	if len(names) > 0 {
		return names
	}
	names = []string{"localhost", "127.0.0.1", "::1"}
	if host, err := os.Hostname(); err == nil && host != "" {
		names = append(names, host)
	}
	return names
}

func createSelfSigned(certFile, keyFile string, names []string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("generate serial number: %w", err)
	}
	template := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: names[0], Organization: []string{"visitrelay self-signed"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		// A CA flag lets a client pin this certificate as its own root.
		IsCA: true,
	}
	for _, name := range names {
		if ip := net.ParseIP(name); ip != nil {
			template.IPAddresses = append(template.IPAddresses, ip)
			continue
		}
		template.DNSNames = append(template.DNSNames, name)
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("create certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("encode key: %w", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	if err := os.MkdirAll(filepath.Dir(certFile), 0o700); err != nil {
		return tls.Certificate{}, fmt.Errorf("create directory: %w", err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		return tls.Certificate{}, fmt.Errorf("write key: %w", err)
	}
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		return tls.Certificate{}, fmt.Errorf("write certificate: %w", err)
	}
	return tls.X509KeyPair(certPEM, keyPEM)
}

// fingerprint formats a digest as colon-separated upper-case hex, the way
// openssl x509 -fingerprint prints it.
func fingerprint(sum []byte) string {
	parts := make([]string, len(sum))
	for i, b := range sum {
		parts[i] = strings.ToUpper(hex.EncodeToString([]byte{b}))
	}
	return strings.Join(parts, ":")
}
