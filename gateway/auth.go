package gateway

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"golang.org/x/crypto/bcrypt"

	"github.com/visitrelay/visitrelay/internal/directory"
)

// dummyHash is compared against when the username is unknown, so that an
// unknown user takes as long to reject as a wrong password.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("visitrelay-no-such-user"), bcrypt.DefaultCost)

type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

type loginResponse struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expiresAt"`
	User      userInfo  `json:"user"`
}

type userInfo struct {
	ID       string `json:"id"`
	Username string `json:"username"`
	Name     string `json:"name"`
}

func (g *Gateway) login(c *fiber.Ctx) error {
	var req loginRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	now := time.Now()
	username := strings.ToLower(strings.TrimSpace(req.Username))
	keys := []string{"user:" + username, "address:" + c.IP()}
	if g.throttle.blocked(now, keys...) {
		return fmt.Errorf("login %q from %s: %w", username, c.IP(), ErrLoginThrottled)
	}

	user, err := g.checkPassword(username, req.Password)
	if err != nil {
		g.throttle.fail(now, keys...)
		return err
	}

	expires := now.Add(g.cfg.Auth.TokenTTL)
	token := g.signer.issue(claims{UserID: user.ID, Username: user.Username, IssuedAt: now, Expires: expires})
	g.logger.Info("login succeeded", "user_id", user.ID, "username", user.Username)
	return c.JSON(loginResponse{
		Token:     token,
		ExpiresAt: expires.UTC(),
		User:      userInfo{ID: user.ID, Username: user.Username, Name: user.Name},
	})
}

// checkPassword returns the same error for an unknown user, a wrong password
// and a disabled user, so a caller cannot tell which usernames exist.
func (g *Gateway) checkPassword(username, password string) (directory.User, error) {
	user, ok := g.dir.User(username)
	hash := []byte(user.PasswordHash)
	if !ok {
		hash = dummyHash
	}
	err := bcrypt.CompareHashAndPassword(hash, []byte(password))
	switch {
	case !ok:
		return user, fmt.Errorf("login %q: unknown user: %w", username, ErrLoginFailed)
	case err != nil:
		return user, fmt.Errorf("login %q: wrong password: %w", username, ErrLoginFailed)
	case user.Disabled:
		return user, fmt.Errorf("login %q: user disabled: %w", username, ErrLoginFailed)
	}
	return user, nil
}

// authenticate checks the bearer token on every request. A token stops
// working as soon as its user is disabled or changes password, because the
// check reads the directory each time.
func (g *Gateway) authenticate(c *fiber.Ctx) error {
	header := c.Get(fiber.HeaderAuthorization)
	token, ok := strings.CutPrefix(header, "Bearer ")
	if !ok || token == "" {
		return fmt.Errorf("no bearer token: %w", ErrUnauthorized)
	}
	cl, err := g.signer.parse(token, time.Now())
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnauthorized, err)
	}
	user, ok := g.dir.User(cl.Username)
	switch {
	case !ok:
		return fmt.Errorf("user %q no longer exists: %w", cl.Username, ErrUnauthorized)
	case user.Disabled:
		return fmt.Errorf("user %q is disabled: %w", cl.Username, ErrUnauthorized)
	case user.PasswordChangedAt.After(cl.IssuedAt):
		return fmt.Errorf("user %q changed password after the token was issued: %w", cl.Username, ErrUnauthorized)
	}
	c.Locals(localsUser, user)
	return c.Next()
}

const localsUser = "user"

func currentUser(c *fiber.Ctx) directory.User {
	user, _ := c.Locals(localsUser).(directory.User)
	return user
}

// decodeJSON decodes a small JSON request body, answering 415 for a body
// that is not declared as JSON and 400 for one that does not parse.
func decodeJSON(c *fiber.Ctx, dst any) error {
	if !isJSON(c) {
		return fmt.Errorf("content type %q: %w", c.Get(fiber.HeaderContentType), ErrNotJSON)
	}
	if err := json.Unmarshal(c.Body(), dst); err != nil {
		return fmt.Errorf("decode body: %w: %w", ErrBadRequest, err)
	}
	return nil
}

func isJSON(c *fiber.Ctx) bool {
	ct := strings.ToLower(c.Get(fiber.HeaderContentType))
	mediaType, _, _ := strings.Cut(ct, ";")
	return strings.TrimSpace(mediaType) == fiber.MIMEApplicationJSON
}
