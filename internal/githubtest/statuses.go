package githubtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// shaKey names a commit. Owner and repo are kept in lower case.
type shaKey struct {
	owner, repo, sha string
}

func newSHAKey(owner, repo, sha string) shaKey {
	return shaKey{owner: strings.ToLower(owner), repo: strings.ToLower(repo), sha: sha}
}

// RecordedStatus is a commit status the server accepted.
type RecordedStatus struct {
	ID          int64
	State       string
	Context     string
	Description string
	TargetURL   string
	CreatedAt   time.Time
}

// Statuses returns the statuses posted on commit sha of owner/repo, oldest
// first.
func (s *Server) Statuses(owner, repo, sha string) []RecordedStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.statuses[newSHAKey(owner, repo, sha)])
}

// StatusCount returns how many statuses with context and state were posted
// on commit sha of owner/repo, for tests that a status is reported once.
func (s *Server) StatusCount(owner, repo, sha, context, state string) int {
	n := 0
	for _, st := range s.Statuses(owner, repo, sha) {
		if st.Context == context && st.State == state {
			n++
		}
	}
	return n
}

// statusRequest is the body of a create-status request.
type statusRequest struct {
	State       string  `json:"state"`
	TargetURL   *string `json:"target_url"`
	Description *string `json:"description"`
	Context     *string `json:"context"`
}

// maxDescription is the longest description GitHub takes, in characters.
const maxDescription = 140

// docsCreateStatus is the documentation link of the statuses API's errors.
const docsCreateStatus = "https://docs.github.com/rest/commits/statuses#create-a-commit-status"

// createStatus serves POST /repos/{owner}/{repo}/statuses/{sha}.
func (s *Server) createStatus(w http.ResponseWriter, r *http.Request) {
	owner, repo, sha := r.PathValue("owner"), r.PathValue("repo"), r.PathValue("sha")
	if !s.authorize(w, r, repo, "statuses", "write") {
		return
	}
	var req statusRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		s.writeError(w, http.StatusBadRequest, "Problems parsing JSON", docsCreateStatus)
		return
	}
	if ferr, bad := checkStatus(req); bad {
		s.writeError(w, http.StatusUnprocessableEntity, "Validation Failed", docsCreateStatus, ferr)
		return
	}

	st := s.record(owner, repo, sha, req)
	s.writeJSON(w, http.StatusCreated, s.statusResponse(owner, repo, sha, st))
}

// checkStatus applies GitHub's own checks on a status, which hold with or
// without the OpenAPI description.
func checkStatus(req statusRequest) (fieldError, bool) {
	switch req.State {
	case "error", "failure", "pending", "success":
	default:
		return fieldError{Resource: "Status", Field: "state", Code: "custom",
			Message: "state is not included in the list"}, true
	}
	if req.Description != nil && utf8.RuneCountInString(*req.Description) > maxDescription {
		return fieldError{Resource: "Status", Field: "description", Code: "custom",
			Message: "description is too long (maximum is 140 characters)"}, true
	}
	return fieldError{}, false
}

// record stores an accepted status.
func (s *Server) record(owner, repo, sha string, req statusRequest) RecordedStatus {
	st := RecordedStatus{State: req.State, Context: "default", CreatedAt: time.Now().UTC()}
	if req.Context != nil {
		st.Context = *req.Context
	}
	if req.Description != nil {
		st.Description = *req.Description
	}
	if req.TargetURL != nil {
		st.TargetURL = *req.TargetURL
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.statusID++
	st.ID = s.statusID
	k := newSHAKey(owner, repo, sha)
	s.statuses[k] = append(s.statuses[k], st)

	return st
}

// statusResponse is GitHub's status schema for a recorded status.
func (s *Server) statusResponse(owner, repo, sha string, st RecordedStatus) map[string]any {
	nullable := func(v string) any {
		if v == "" {
			return nil
		}
		return v
	}
	at := st.CreatedAt.Format(time.RFC3339)

	return map[string]any{
		"url":         fmt.Sprintf("%srepos/%s/%s/statuses/%s", s.URL, owner, repo, sha),
		"avatar_url":  s.URL + "avatars/yaci",
		"id":          st.ID,
		"node_id":     fmt.Sprintf("SC_%d", st.ID),
		"state":       st.State,
		"description": nullable(st.Description),
		"target_url":  nullable(st.TargetURL),
		"context":     st.Context,
		"created_at":  at,
		"updated_at":  at,
		"creator":     s.botUser(),
	}
}

// botUser is the simple-user GitHub reports as a status's creator.
func (s *Server) botUser() map[string]any {
	u := s.URL + "users/yaci%5Bbot%5D"
	return map[string]any{
		"login": "yaci[bot]", "id": 1, "node_id": "BOT_1", "type": "Bot", "site_admin": false,
		"avatar_url": s.URL + "avatars/yaci", "gravatar_id": "", "url": u,
		"html_url": s.URL + "apps/yaci", "followers_url": u + "/followers",
		"following_url": u + "/following{/other_user}", "gists_url": u + "/gists{/gist_id}",
		"starred_url": u + "/starred{/owner}{/repo}", "subscriptions_url": u + "/subscriptions",
		"organizations_url": u + "/orgs", "repos_url": u + "/repos",
		"events_url": u + "/events{/privacy}", "received_events_url": u + "/received_events",
	}
}
