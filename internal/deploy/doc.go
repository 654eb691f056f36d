// Package deploy holds the tests of how yaci is deployed: the Helm chart in
// charts/yaci (linted and rendered with the Helm SDK, applied with
// server-side dry run to a real API server, its RBAC checked with
// SubjectAccessReviews), the Dockerfile (its exact go build command gives
// a static binary), and the GitHub App manifest (its permissions and
// events are what yaci's code uses). It has no code of its own: the tests
// read those files where users read them, so none can drift unnoticed.
package deploy
