// Package logs keeps and shows the logs of yaci's runs.
//
// A run's commit status links to its page, /runs/<name>?t=<token>, where
// the token is an HMAC of the run's name (see Signer), so that nobody can
// read a run's log by guessing its name. The page shows the log of every
// container of the run's pods: while the run is going, read from the
// cluster and followed live; once it has ended, read from the archive,
// because the Job and its pods are deleted an hour later.
//
// The watcher calls Archiver.Archive when a Job ends. It copies every
// container's log into a Store, compressed and bounded in size, together
// with the run's metadata. Handler serves the pages, a live stream, the
// raw logs, and a small JSON API over both the cluster and the archive.
package logs
