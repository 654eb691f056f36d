package githubtest

import (
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	jwt "github.com/golang-jwt/jwt/v4"
)

// IssuedToken is an installation token the server handed out.
type IssuedToken struct {
	InstallationID int64
	Token          string
	ExpiresAt      time.Time
	// Repositories and Permissions are what the request asked for; empty
	// means all the installation has.
	Repositories []string
	Permissions  map[string]string
}

// SetAppKey makes the server check that the JWTs sent for installation
// tokens are signed with the private key of pub, with RS256, and issued by
// appID. Without it any well-formed JWT is taken.
func (s *Server) SetAppKey(appID int64, pub *rsa.PublicKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.appID, s.appKey = appID, pub
}

// SetTokenTTL sets how long installation tokens issued from now on last;
// the default is GitHub's hour.
func (s *Server) SetTokenTTL(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokenTTL = d
}

// IssuedTokens returns the installation tokens issued so far, oldest first.
func (s *Server) IssuedTokens() []IssuedToken {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.issuedOrder)
}

// credential returns the token of an "Authorization: token X" or "Bearer
// X" header.
func credential(r *http.Request) string {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "token") && !strings.EqualFold(scheme, "bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

// authorize checks the request's token may use permission perm ("read" or
// "write" on the named permission) on owner/repo, and answers for it when
// not, as GitHub does: 401 for an unknown token, 404 for a repository the
// token cannot see, 403 for a missing permission.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, repo, perm, level string) bool {
	tok := credential(r)

	s.mu.Lock()
	plain := s.tokens[tok]
	issued, isIssued := s.issued[tok]
	s.mu.Unlock()

	switch {
	case tok == "":
		s.writeError(w, http.StatusUnauthorized, "Requires authentication", "")
		return false
	case plain:
		return true
	case !isIssued || time.Now().After(issued.ExpiresAt):
		s.writeError(w, http.StatusUnauthorized, "Bad credentials", "")
		return false
	case len(issued.Repositories) > 0 && !slices.ContainsFunc(issued.Repositories,
		func(name string) bool { return strings.EqualFold(name, repo) }):
		s.notFound(w, "")
		return false
	case len(issued.Permissions) > 0 && !grants(issued.Permissions[perm], level):
		s.writeError(w, http.StatusForbidden, "Resource not accessible by integration", "")
		return false
	default:
		return true
	}
}

// grants reports whether a token's level of a permission allows level.
func grants(have, want string) bool {
	return have == want || have == "write" && want == "read" || have == "admin"
}

// verifyJWT checks an App JWT, against the App's key when one was set.
func (s *Server) verifyJWT(tok string) bool {
	s.mu.Lock()
	appID, key := s.appID, s.appKey
	s.mu.Unlock()

	if key == nil {
		_, _, err := jwt.NewParser().ParseUnverified(tok, &jwt.RegisteredClaims{})
		return err == nil
	}
	claims := &jwt.RegisteredClaims{}
	parser := jwt.NewParser(jwt.WithValidMethods([]string{jwt.SigningMethodRS256.Alg()}))
	_, err := parser.ParseWithClaims(tok, claims, func(*jwt.Token) (any, error) { return key, nil })
	if err != nil || claims.ExpiresAt == nil {
		return false
	}
	// GitHub refuses JWTs that live longer than ten minutes.
	if time.Until(claims.ExpiresAt.Time) > 10*time.Minute+time.Minute {
		return false
	}

	return claims.Issuer == strconv.FormatInt(appID, 10)
}

// tokenRequest is the body of a request for an installation token.
type tokenRequest struct {
	Repositories []string          `json:"repositories"`
	Permissions  map[string]string `json:"permissions"`
}

// tokenResponse is GitHub's installation-token schema, in the parts the
// fake fills in.
type tokenResponse struct {
	Token               string            `json:"token"`
	ExpiresAt           string            `json:"expires_at"`
	Permissions         map[string]string `json:"permissions"`
	RepositorySelection string            `json:"repository_selection"`
}

// defaultPermissions are what the fake's App is granted, and so what a
// token asked for without permissions gets.
var defaultPermissions = map[string]string{
	"contents": "read", "metadata": "read", "statuses": "write",
}

// docsCreateToken is the documentation link GitHub's errors for this
// endpoint carry.
const docsCreateToken = "https://docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app"

// createToken serves POST /app/installations/{installation_id}/access_tokens.
func (s *Server) createToken(w http.ResponseWriter, r *http.Request) {
	if !s.verifyJWT(credential(r)) {
		s.writeError(w, http.StatusUnauthorized,
			"A JSON web token could not be decoded", docsCreateToken)
		return
	}
	inst, err := strconv.ParseInt(r.PathValue("installation_id"), 10, 64)
	if err != nil || inst <= 0 {
		s.notFound(w, docsCreateToken)
		return
	}
	var req tokenRequest
	if r.ContentLength != 0 {
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			s.writeError(w, http.StatusBadRequest, "Problems parsing JSON", docsCreateToken)
			return
		}
	}

	issued := s.issue(inst, req)
	perms := issued.Permissions
	if len(perms) == 0 {
		perms = defaultPermissions
	}
	resp := tokenResponse{
		Token:               issued.Token,
		ExpiresAt:           issued.ExpiresAt.UTC().Format(time.RFC3339),
		Permissions:         perms,
		RepositorySelection: "all",
	}
	if len(issued.Repositories) > 0 {
		resp.RepositorySelection = "selected"
	}
	s.writeJSON(w, http.StatusCreated, resp)
}

// issue mints and records an installation token.
func (s *Server) issue(inst int64, req tokenRequest) IssuedToken {
	s.mu.Lock()
	defer s.mu.Unlock()

	t := IssuedToken{
		InstallationID: inst,
		Token:          "ghs_" + randomID(18),
		ExpiresAt:      time.Now().Add(s.tokenTTL).Truncate(time.Second),
		Repositories:   req.Repositories,
		Permissions:    req.Permissions,
	}
	s.issued[t.Token] = t
	s.issuedOrder = append(s.issuedOrder, t)

	return t
}
