package config

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// credentialsDirectory is the variable systemd sets for a unit with
// LoadCredential= or SetCredential=: the directory of its credentials.
const credentialsDirectory = "CREDENTIALS_DIRECTORY"

// ReadSecret returns the content of a secret file, such as a password or
// an nkey seed, without surrounding white space. The path may start with
// $CREDENTIALS_DIRECTORY/ to read a systemd credential. key names the
// config key in errors.
func ReadSecret(key, path string) (string, error) {
	resolved, err := resolveSecretPath(path)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", key, err)
	}
	data, err := os.ReadFile(resolved)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", key, err)
	}
	secret := strings.TrimSpace(string(data))
	if secret == "" {
		return "", fmt.Errorf("read %s: %s is empty", key, resolved)
	}
	return secret, nil
}

func resolveSecretPath(path string) (string, error) {
	for _, prefix := range []string{"$" + credentialsDirectory, "${" + credentialsDirectory + "}"} {
		rest, ok := strings.CutPrefix(path, prefix)
		if !ok {
			continue
		}
		dir := os.Getenv(credentialsDirectory)
		if dir == "" {
			return "", errors.New(path + ": $CREDENTIALS_DIRECTORY is not set; systemd sets it for a unit with LoadCredential=")
		}
		return dir + rest, nil
	}
	return path, nil
}
