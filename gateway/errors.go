package gateway

import (
	"errors"
	"log/slog"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/visitrelay/visitrelay/internal/visit"
)

// Errors that handlers return. The error handler maps each to a stable
// public code, status and message; the wrapped cause is only logged.
var (
	ErrLoginFailed    = errors.New("login failed")
	ErrLoginThrottled = errors.New("too many failed logins")
	ErrUnauthorized   = errors.New("missing, expired or revoked token")
	ErrConflict       = errors.New("visit id already used with different content")
	ErrUnavailable    = errors.New("visit stream unavailable")
	ErrBadRequest     = errors.New("bad request")
	ErrNotJSON        = errors.New("body is not JSON")
	ErrAdminRequired  = errors.New("missing or wrong admin token")
)

// publicError is what a client sees for an error.
type publicError struct {
	status     int
	code       string
	message    string
	retryAfter int // seconds; 0 sends no Retry-After
}

// publicErrors is the one table of errors a client can see.
var publicErrors = map[error]publicError{
	ErrLoginFailed:    {fiber.StatusUnauthorized, "login_failed", "unknown user or wrong password", 0},
	ErrLoginThrottled: {fiber.StatusTooManyRequests, "login_throttled", "too many failed logins; wait and try again", 60},
	ErrUnauthorized:   {fiber.StatusUnauthorized, "unauthorized", "log in again: the token is missing, expired or revoked", 0},
	ErrConflict:       {fiber.StatusConflict, "visit_conflict", "this visitId was already used for a visit with different content; record the visit again with a new visitId", 0},
	ErrUnavailable:    {fiber.StatusServiceUnavailable, "unavailable", "the gateway cannot store visits right now; keep the visit and retry with the same visitId", 30},
	ErrBadRequest:     {fiber.StatusBadRequest, "bad_request", "the request is malformed", 0},
	ErrNotJSON:        {fiber.StatusUnsupportedMediaType, "not_json", "send the body as JSON with Content-Type: application/json", 0},
	ErrAdminRequired:  {fiber.StatusUnauthorized, "admin_required", "this page needs the gateway's admin token: any user name, the token as password", 0},
}

type errorBody struct {
	Code    string             `json:"code"`
	Message string             `json:"message"`
	Errors  []visit.FieldError `json:"errors,omitempty"`
}

// handleError is the app's only error path. It turns a handler's error into
// its public form and logs the cause with the request ID.
func handleError(logger *slog.Logger) fiber.ErrorHandler {
	return func(c *fiber.Ctx, err error) error {
		var forbidden forbiddenUserError
		if errors.As(err, &forbidden) {
			return c.Status(fiber.StatusForbidden).JSON(errorBody{
				Code: "forbidden", Message: "a salesman can only post his own visits", Errors: forbidden.errs,
			})
		}
		var fieldErrs visit.Errors
		if errors.As(err, &fieldErrs) {
			return c.Status(fiber.StatusBadRequest).JSON(errorBody{
				Code: "invalid_visit", Message: "the visit has invalid fields", Errors: fieldErrs,
			})
		}

		pub, ok := lookupPublic(err)
		if !ok {
			pub = fromFiberError(err)
		}
		level := slog.LevelInfo
		if pub.status >= 500 {
			level = slog.LevelError
		}
		logger.Log(c.UserContext(), level, "request failed",
			"request_id", c.Locals("requestid"), "method", c.Method(), "path", c.Path(),
			"status", pub.status, "error", err)

		if pub.retryAfter > 0 {
			c.Set(fiber.HeaderRetryAfter, strconv.Itoa(pub.retryAfter))
		}
		return c.Status(pub.status).JSON(errorBody{Code: pub.code, Message: pub.message})
	}
}

func lookupPublic(err error) (publicError, bool) {
	for sentinel, pub := range publicErrors {
		if errors.Is(err, sentinel) {
			return pub, true
		}
	}
	return publicError{}, false
}

// fromFiberError covers errors raised by Fiber itself, such as an unknown
// route or a body over the size limit.
func fromFiberError(err error) publicError {
	var fe *fiber.Error
	if !errors.As(err, &fe) {
		return publicError{fiber.StatusInternalServerError, "internal", "internal error; retry later", 0}
	}
	switch fe.Code {
	case fiber.StatusRequestEntityTooLarge:
		return publicError{fe.Code, "too_large", "the body is larger than 64 KiB", 0}
	case fiber.StatusNotFound:
		return publicError{fe.Code, "not_found", "no such path", 0}
	case fiber.StatusMethodNotAllowed:
		return publicError{fe.Code, "method_not_allowed", "method not allowed on this path", 0}
	}
	if fe.Code >= 500 {
		return publicError{fe.Code, "internal", "internal error; retry later", 0}
	}
	return publicError{fe.Code, "bad_request", fe.Message, 0}
}
