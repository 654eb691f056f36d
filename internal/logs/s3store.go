package logs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"golang.org/x/sync/errgroup"

	"github.com/yaci-ci/yaci/internal/launch"
)

// ErrAccessDenied is returned (wrapped) when an object store refuses the
// store's credentials or denies it an operation: a configuration error
// that no retry will mend.
var ErrAccessDenied = errors.New("logs: access to the log store refused")

// Bounds of S3Store's calls to the object store.
const (
	// s3CallTimeout bounds a call that moves a small object or lists one
	// page of keys.
	s3CallTimeout = 30 * time.Second
	// s3PartTimeout bounds the upload of one part of a log.
	s3PartTimeout = 2 * time.Minute
	// s3PartSize is the size of every part of a multipart upload but the
	// last: S3's smallest, so that memory per upload stays small.
	s3PartSize = 5 << 20
	// s3MaxSmallObject bounds what is read of a metadata object.
	s3MaxSmallObject = 8 << 20
	// s3ListWorkers bounds the metadata objects ListRuns reads at once.
	s3ListWorkers = 8
	// s3StaleUpload is how long after it began an unfinished multipart
	// upload is taken for the leftover of a killed replica and aborted.
	// A live upload is one log, copied within the Archiver's LogTimeout
	// (minutes), so a day leaves a wide margin for a slow store and for
	// clocks that disagree, and never touches an upload that another
	// replica is sending now.
	s3StaleUpload = 24 * time.Hour
)

// S3Options say where an S3Store keeps its objects and how it signs in.
type S3Options struct {
	// Endpoint is the base URL of an S3-compatible service, such as
	// "https://minio.example.com:9000". Empty means AWS S3 in Region.
	Endpoint string
	// Region is the region requests are signed for; empty means
	// "us-east-1", which most S3-compatible services accept.
	Region string
	// Bucket holds the objects; it must exist.
	Bucket string
	// Prefix, when not empty, comes before every key, so that a bucket
	// can be shared: "yaci" or "yaci/" puts keys under "yaci/".
	Prefix string
	// AccessKey and SecretKey are the credentials, read from files. When
	// both are empty the AWS SDK's default chain is used instead: its
	// environment variables, a Kubernetes service account's web
	// identity, an instance role.
	AccessKey []byte
	SecretKey []byte
	// PathStyle puts the bucket in the URL's path rather than in its host
	// name, as most S3-compatible services need.
	PathStyle bool
	// MaxLogBytes bounds one stored log; zero means DefaultMaxLogBytes.
	MaxLogBytes int64
	// Logger receives failures that the caller does not see, such as an
	// abandoned upload that could not be cleaned up, and the number of
	// stale uploads aborted at start-up; nil means slog.Default().
	Logger *slog.Logger
}

// String describes the options without their secret key, so that
// printing them with %v leaks nothing.
func (o S3Options) String() string {
	return fmt.Sprintf("s3://%s/%s at %s (region %s, path style %t, credentials %s)",
		o.Bucket, o.Prefix, o.endpointName(), o.Region, o.PathStyle, o.credentialSource())
}

// GoString is String, for %#v.
func (o S3Options) GoString() string { return o.String() }

// LogValue implements slog.LogValuer, leaving the keys out.
func (o S3Options) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("endpoint", o.endpointName()),
		slog.String("region", o.Region),
		slog.String("bucket", o.Bucket),
		slog.String("prefix", o.Prefix),
		slog.Bool("path_style", o.PathStyle),
		slog.String("credentials", o.credentialSource()),
	)
}

func (o S3Options) endpointName() string {
	if o.Endpoint == "" {
		return "AWS S3"
	}

	return o.Endpoint
}

func (o S3Options) credentialSource() string {
	if len(o.AccessKey) == 0 && len(o.SecretKey) == 0 {
		return "from the AWS default chain"
	}

	return "static (redacted)"
}

// bucketPattern is what S3 allows as a bucket name.
var bucketPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// prefixSegment is what a segment of a key prefix may hold.
var prefixSegment = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// validate checks o and returns its key prefix, ending in "/" unless
// empty.
func (o S3Options) validate() (prefix string, err error) {
	if !bucketPattern.MatchString(o.Bucket) || strings.Contains(o.Bucket, "..") {
		return "", fmt.Errorf("bucket name %q is not an S3 bucket name", o.Bucket)
	}
	if o.Endpoint != "" {
		u, err := url.Parse(o.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return "", fmt.Errorf("endpoint %q is not an http or https URL", o.Endpoint)
		}
		// Keys go in their own files, never into a URL that is logged.
		if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			return "", fmt.Errorf("endpoint %q has user info, a query or a fragment", u.Redacted())
		}
	}
	if (len(o.AccessKey) == 0) != (len(o.SecretKey) == 0) {
		return "", errors.New("an access key needs a secret key, and the other way round")
	}

	prefix = strings.TrimSuffix(o.Prefix, "/")
	if prefix == "" {
		return "", nil
	}
	for seg := range strings.SplitSeq(prefix, "/") {
		if !prefixSegment.MatchString(seg) || seg == "." || seg == ".." {
			return "", fmt.Errorf("key prefix %q: segment %q is not a plain name", o.Prefix, seg)
		}
	}

	return prefix + "/", nil
}

// S3Store is a Store in a bucket of an S3-compatible object store, which
// several yaci replicas can share. Its objects have the same content as
// DirStore's files, under the same names below the prefix:
//
//	runs/<run>/run.json                       the run's metadata
//	runs/<run>/logs/<pod>/<container>.log.gz  a container's log
//	runs/<run>/logs/<pod>/<container>.json    its LogInfo
//	index/<repo key>/<sha>/<run>              empty; lists runs by commit
//
// An S3 PUT replaces an object whole, so a reader sees the old copy or
// the new one. A log is streamed up in parts of 5 MiB as it is
// compressed and becomes visible only when its upload completes; an
// upload that fails is aborted, so it leaves no object behind. The parts
// of an upload whose process was killed stay in the bucket, invisible
// but billed, until NewS3Store of some replica aborts them a day later.
type S3Store struct {
	client      *s3.Client
	bucket      string
	prefix      string
	maxLogBytes int64
	log         *slog.Logger
}

// NewS3Store returns a store in the bucket that o names, after checking
// that the bucket can be listed with o's credentials, so that a wrong key
// or bucket shows at start-up rather than at the first archived run.
// Refused credentials give an error wrapping ErrAccessDenied.
//
// It then aborts the multipart uploads of logs that began more than a
// day ago (see abortStale); a failure to do so is logged, not returned.
func NewS3Store(ctx context.Context, o S3Options) (*S3Store, error) {
	prefix, err := o.validate()
	if err != nil {
		return nil, fmt.Errorf("log store %s: %w", o, err)
	}
	maxLogBytes, err := logBound(o.MaxLogBytes)
	if err != nil {
		return nil, fmt.Errorf("log store %s: %w", o, err)
	}
	if o.Region == "" {
		o.Region = "us-east-1"
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}

	loads := []func(*config.LoadOptions) error{config.WithRegion(o.Region)}
	if len(o.AccessKey) > 0 {
		static := credentials.NewStaticCredentialsProvider(
			string(o.AccessKey), string(o.SecretKey), "")
		loads = append(loads, config.WithCredentialsProvider(static))
	}
	cfg, err := config.LoadDefaultConfig(ctx, loads...)
	if err != nil {
		return nil, fmt.Errorf("log store %s: load AWS settings: %w", o, err)
	}
	client := s3.NewFromConfig(cfg, func(so *s3.Options) {
		if o.Endpoint != "" {
			so.BaseEndpoint = aws.String(o.Endpoint)
		}
		so.UsePathStyle = o.PathStyle
		// The SDK's default checksums travel in headers and trailers
		// that many S3-compatible services reject; TLS already guards
		// the bytes in transit.
		so.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		so.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	})

	s := &S3Store{
		client:      client,
		bucket:      o.Bucket,
		prefix:      prefix,
		maxLogBytes: maxLogBytes,
		log:         o.Logger.With("bucket", o.Bucket),
	}
	if err := s.check(ctx); err != nil {
		return nil, fmt.Errorf("log store %s: %w", o, err)
	}
	s.sweepUploads(ctx, time.Now().Add(-s3StaleUpload))

	return s, nil
}

// sweepUploads aborts the log uploads that began before cutoff and logs
// the outcome. Its failure leaves only parts in the bucket, so start-up
// goes on; the next one tries again.
func (s *S3Store) sweepUploads(ctx context.Context, cutoff time.Time) {
	n, err := s.abortStale(ctx, cutoff, 0)
	if n > 0 {
		s.log.InfoContext(ctx, "aborted unfinished log uploads of stopped replicas", "count", n)
	}
	switch {
	case errors.Is(err, ErrAccessDenied):
		s.log.WarnContext(ctx, "the credentials may not clean up unfinished log uploads; "+
			"allow s3:ListBucketMultipartUploads and s3:AbortMultipartUpload, or give "+
			"the bucket a lifecycle rule that aborts incomplete multipart uploads",
			"error", err)
	case err != nil:
		s.log.WarnContext(ctx, "clean up unfinished log uploads", "error", err)
	}
}

// abortStale aborts the multipart uploads below the store's runs/ that
// began before cutoff, listed pageSize at a time (zero: as many as the
// service sends), and returns how many it aborted. Only logs are sent in
// parts, and all of them live below runs/, so nothing else in a shared
// bucket is touched. It stops at the first failure, which would most
// likely fail again for the next upload.
func (s *S3Store) abortStale(ctx context.Context, cutoff time.Time, pageSize int32) (int, error) {
	in := &s3.ListMultipartUploadsInput{
		Bucket: aws.String(s.bucket), Prefix: aws.String(s.prefix + "runs/"),
	}
	if pageSize > 0 {
		in.MaxUploads = aws.Int32(pageSize)
	}

	aborted := 0
	for {
		cctx, cancel := context.WithTimeout(ctx, s3CallTimeout)
		page, err := s.client.ListMultipartUploads(cctx, in)
		cancel()
		if err != nil {
			return aborted, fmt.Errorf("list multipart uploads: %w", s3Error(err))
		}
		for _, up := range page.Uploads {
			if up.Initiated == nil || !up.Initiated.Before(cutoff) {
				continue
			}
			err := s.abortUpload(ctx, aws.ToString(up.Key), up.UploadId)
			var api smithy.APIError
			switch {
			case errors.As(err, &api) && api.ErrorCode() == "NoSuchUpload":
				// Another replica's sweep came first.
			case err != nil:
				return aborted, fmt.Errorf("abort upload of %s: %w", aws.ToString(up.Key), err)
			default:
				aborted++
			}
		}
		// The next page begins after the last key of this one. Its
		// upload id would also pick up the key's further uploads, but
		// versitygw refuses an id of a key it has moved past; a log
		// with two stale uploads split across a page is rare, and a
		// later sweep takes the rest. A service that says there is
		// more but not where it goes on would be listed for ever.
		next := aws.ToString(page.NextKeyMarker)
		if !aws.ToBool(page.IsTruncated) || next == "" || next == aws.ToString(in.KeyMarker) {
			return aborted, nil
		}
		in.KeyMarker = page.NextKeyMarker
	}
}

// check lists one key under the prefix: the cheapest call that proves
// the bucket exists and the credentials may read it.
func (s *S3Store) check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s3CallTimeout)
	defer cancel()

	_, err := s.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{
		Bucket: aws.String(s.bucket), Prefix: aws.String(s.prefix), MaxKeys: aws.Int32(1),
	})
	if err != nil {
		return fmt.Errorf("list bucket: %w", s3Error(err))
	}

	return nil
}

// MaxLogBytes returns the bound on one stored log.
func (s *S3Store) MaxLogBytes() int64 { return s.maxLogBytes }

func (s *S3Store) logKey(run, pod, file string) string {
	return s.prefix + "runs/" + run + "/logs/" + pod + "/" + file
}

func (s *S3Store) runKey(run string) string { return s.prefix + "runs/" + run + "/run.json" }

// indexPrefix is the prefix of the index keys of repo, at sha when not
// empty.
func (s *S3Store) indexPrefix(repo, sha string) string {
	p := s.prefix + "index/" + repoKey(repo) + "/"
	if sha != "" {
		p += sha + "/"
	}

	return p
}

// PutLog implements Store. The log is compressed and uploaded as it is
// read, in parts, never whole in memory; its LogInfo is written after it.
func (s *S3Store) PutLog(ctx context.Context, run, pod, container string, r io.Reader) (LogInfo, error) {
	if err := checkLogNames(run, pod, container); err != nil {
		return LogInfo{}, err
	}

	up := &upload{
		ctx: ctx, store: s, key: s.logKey(run, pod, container+".log.gz"),
		contentType: "application/gzip",
	}
	info, err := encodeLog(ctx, up, r, s.maxLogBytes)
	if err == nil {
		err = up.finish()
	}
	if err != nil {
		up.abort()
		return LogInfo{}, fmt.Errorf("store log %s/%s/%s: %w", run, pod, container, err)
	}

	data, err := json.Marshal(info)
	if err != nil {
		return LogInfo{}, fmt.Errorf("store log info %s/%s/%s: %w", run, pod, container, err)
	}
	if err := s.putSmall(ctx, s.logKey(run, pod, container+".json"), data); err != nil {
		return LogInfo{}, fmt.Errorf("store log info %s/%s/%s: %w", run, pod, container, err)
	}

	return info, nil
}

// GetLog implements Store.
func (s *S3Store) GetLog(ctx context.Context, run, pod, container string) (io.ReadCloser, error) {
	if err := checkLogNames(run, pod, container); err != nil {
		return nil, err
	}

	// No deadline here: the body is read for as long as the caller
	// streams it, and ctx ends it.
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(s.bucket), Key: aws.String(s.logKey(run, pod, container+".log.gz")),
	})
	if err != nil {
		return nil, fmt.Errorf("open log %s/%s/%s: %w", run, pod, container, s3Error(err))
	}
	rc, err := decodeLog(out.Body)
	if err != nil {
		return nil, fmt.Errorf("open log %s/%s/%s: %w", run, pod, container, err)
	}

	return rc, nil
}

// StatLog implements Store.
func (s *S3Store) StatLog(ctx context.Context, run, pod, container string) (LogInfo, error) {
	if err := checkLogNames(run, pod, container); err != nil {
		return LogInfo{}, err
	}

	var info LogInfo
	data, err := s.getSmall(ctx, s.logKey(run, pod, container+".json"))
	if err != nil {
		return info, fmt.Errorf("stat log %s/%s/%s: %w", run, pod, container, err)
	}
	if err := json.Unmarshal(data, &info); err != nil {
		return info, fmt.Errorf("stat log %s/%s/%s: %w", run, pod, container, err)
	}

	return info, nil
}

// PutRun implements Store. The index entry is written after the metadata,
// so a listed run can always be read; a run that cannot be indexed is not
// stored at all.
func (s *S3Store) PutRun(ctx context.Context, run *Run) error {
	if err := checkName("run", run.Name); err != nil {
		return err
	}
	if !repoPattern.MatchString(run.Repo) || !launch.IsCommitID(run.SHA) {
		return fmt.Errorf("index run %s: repo %q at %q: %w", run.Name, run.Repo, run.SHA,
			ErrInvalidName)
	}

	data, err := json.MarshalIndent(run, "", "  ")
	if err != nil {
		return fmt.Errorf("store run %s: %w", run.Name, err)
	}
	if err := s.putSmall(ctx, s.runKey(run.Name), append(data, '\n')); err != nil {
		return fmt.Errorf("store run %s: %w", run.Name, err)
	}
	if err := s.putSmall(ctx, s.indexPrefix(run.Repo, run.SHA)+run.Name, nil); err != nil {
		return fmt.Errorf("index run %s: %w", run.Name, err)
	}

	return nil
}

// GetRun implements Store.
func (s *S3Store) GetRun(ctx context.Context, name string) (*Run, error) {
	if err := checkName("run", name); err != nil {
		return nil, err
	}

	data, err := s.getSmall(ctx, s.runKey(name))
	if err != nil {
		return nil, fmt.Errorf("read run %s: %w", name, err)
	}
	run := &Run{}
	if err := json.Unmarshal(data, run); err != nil {
		return nil, fmt.Errorf("read run %s: %w", name, err)
	}

	return run, nil
}

// indexEntry is one run found in the index.
type indexEntry struct{ sha, run string }

// ListRuns implements Store. An index entry whose run is gone or unreadable
// is left out, as in DirStore; a failure to reach the store fails the call
// rather than returning a list with silent gaps.
//
// TODO: every indexed run of a repository is read to sort them by start;
// put the start time into index keys once repositories keep thousands of
// archived runs.
func (s *S3Store) ListRuns(ctx context.Context, repo, sha string) ([]*Run, error) {
	if !repoPattern.MatchString(repo) || (sha != "" && !launch.IsCommitID(sha)) {
		return nil, fmt.Errorf("list runs of %q at %q: %w", repo, sha, ErrInvalidName)
	}

	entries, err := s.listIndex(ctx, repo, sha)
	if err != nil {
		return nil, fmt.Errorf("list runs of %s: %w", repo, err)
	}

	found := make([]*Run, len(entries))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s3ListWorkers)
	for i, e := range entries {
		g.Go(func() error {
			run, err := s.GetRun(gctx, e.run)
			var syntax *json.SyntaxError
			var typ *json.UnmarshalTypeError
			switch {
			case errors.Is(err, ErrNotFound), errors.As(err, &syntax), errors.As(err, &typ):
				return nil
			case err != nil:
				return err
			}
			if strings.EqualFold(run.Repo, repo) && run.SHA == e.sha {
				found[i] = run
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("list runs of %s: %w", repo, err)
	}

	var runs []*Run
	for _, r := range found {
		if r != nil {
			runs = append(runs, r)
		}
	}
	sortRuns(runs)
	if len(runs) > maxListed {
		runs = runs[:maxListed]
	}

	return runs, nil
}

// listIndex returns the index entries of repo, at sha when not empty. A
// key that is not "<sha>/<run>" below the repository's prefix is skipped.
func (s *S3Store) listIndex(ctx context.Context, repo, sha string) ([]indexEntry, error) {
	base := s.indexPrefix(repo, "")
	pages := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(s.bucket), Prefix: aws.String(s.indexPrefix(repo, sha)),
	})

	var entries []indexEntry
	for pages.HasMorePages() {
		cctx, cancel := context.WithTimeout(ctx, s3CallTimeout)
		page, err := pages.NextPage(cctx)
		cancel()
		if err != nil {
			return nil, s3Error(err)
		}
		for _, obj := range page.Contents {
			c, run, ok := strings.Cut(strings.TrimPrefix(aws.ToString(obj.Key), base), "/")
			if ok && launch.IsCommitID(c) && checkName("run", run) == nil {
				entries = append(entries, indexEntry{sha: c, run: run})
			}
		}
	}

	return entries, nil
}

// putSmall writes data, a metadata object or an empty index entry, as
// the object key.
func (s *S3Store) putSmall(ctx context.Context, key string, data []byte) error {
	contentType := "application/json"
	if len(data) == 0 {
		contentType = "application/octet-stream"
	}

	return s.putObject(ctx, key, contentType, data, s3CallTimeout)
}

// getSmall reads the object key whole; it refuses one larger than
// s3MaxSmallObject, which no metadata object is.
func (s *S3Store) getSmall(ctx context.Context, key string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, s3CallTimeout)
	defer cancel()

	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(s.bucket), Key: aws.String(key),
	})
	if err != nil {
		return nil, s3Error(err)
	}
	defer out.Body.Close()

	data, err := io.ReadAll(io.LimitReader(out.Body, s3MaxSmallObject+1))
	if err != nil {
		return nil, err
	}
	if len(data) > s3MaxSmallObject {
		return nil, fmt.Errorf("object larger than %s", formatSize(s3MaxSmallObject))
	}

	return data, nil
}

// upload is an io.Writer that writes one object: what fits in one part is
// sent with a single PUT by finish; more starts a multipart upload whose
// parts are sent as they fill, so at most one part is held in memory.
// Nothing is visible under the key until finish succeeds.
type upload struct {
	// ctx is the PutLog call's, for Write, which takes none.
	ctx         context.Context
	store       *S3Store
	key         string
	contentType string

	buf   []byte
	id    *string // the multipart upload, once started
	parts []types.CompletedPart
}

// Write implements io.Writer. A full part is sent only when more bytes
// follow, so that every part but the last is exactly s3PartSize.
func (u *upload) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		if len(u.buf) == s3PartSize {
			if err := u.sendPart(); err != nil {
				return n, err
			}
		}
		k := min(s3PartSize-len(u.buf), len(p))
		u.buf = append(u.buf, p[:k]...)
		p = p[k:]
		n += k
	}

	return n, nil
}

func (u *upload) sendPart() error {
	ctx, cancel := context.WithTimeout(u.ctx, s3PartTimeout)
	defer cancel()
	s := u.store

	if u.id == nil {
		out, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
			Bucket: aws.String(s.bucket), Key: aws.String(u.key),
			ContentType: aws.String(u.contentType),
		})
		if err != nil {
			return fmt.Errorf("start upload: %w", s3Error(err))
		}
		u.id = out.UploadId
	}

	num := int32(len(u.parts) + 1)
	out, err := s.client.UploadPart(ctx, &s3.UploadPartInput{
		Bucket: aws.String(s.bucket), Key: aws.String(u.key), UploadId: u.id,
		PartNumber: aws.Int32(num), Body: bytes.NewReader(u.buf),
		ContentLength: aws.Int64(int64(len(u.buf))),
	})
	if err != nil {
		return fmt.Errorf("upload part %d: %w", num, s3Error(err))
	}
	u.parts = append(u.parts, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(num)})
	u.buf = u.buf[:0]

	return nil
}

// finish makes the object visible: one PUT of what was written, or the
// last part and the completion of the multipart upload.
func (u *upload) finish() error {
	s := u.store
	if u.id == nil {
		return s.putObject(u.ctx, u.key, u.contentType, u.buf, s3PartTimeout)
	}

	if err := u.sendPart(); err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(u.ctx, s3CallTimeout)
	defer cancel()
	_, err := s.client.CompleteMultipartUpload(cctx, &s3.CompleteMultipartUploadInput{
		Bucket: aws.String(s.bucket), Key: aws.String(u.key), UploadId: u.id,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: u.parts},
	})
	if err != nil {
		return fmt.Errorf("complete upload: %w", s3Error(err))
	}
	u.id = nil

	return nil
}

// abort discards the parts of an unfinished multipart upload. It runs
// even when the call's context has ended, since that is a common reason to abort; its
// failure is only logged, as the caller's error already says the log was
// not stored.
func (u *upload) abort() {
	if u.id == nil {
		return
	}

	err := u.store.abortUpload(context.WithoutCancel(u.ctx), u.key, u.id)
	if err != nil {
		u.store.log.WarnContext(u.ctx, "abort log upload; its parts stay in the bucket",
			"key", u.key, "error", err)
	}
}

// abortUpload discards the parts of the multipart upload id of key.
func (s *S3Store) abortUpload(ctx context.Context, key string, id *string) error {
	ctx, cancel := context.WithTimeout(ctx, s3CallTimeout)
	defer cancel()

	_, err := s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
		Bucket: aws.String(s.bucket), Key: aws.String(key), UploadId: id,
	})

	return s3Error(err)
}

// putObject writes data as key in one PUT that must end within timeout.
func (s *S3Store) putObject(ctx context.Context, key, contentType string, data []byte,
	timeout time.Duration,
) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	_, err := s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(s.bucket), Key: aws.String(key),
		Body: bytes.NewReader(data), ContentLength: aws.Int64(int64(len(data))),
		ContentType: aws.String(contentType),
	})
	if err != nil {
		return fmt.Errorf("put object: %w", s3Error(err))
	}

	return nil
}

// s3Error maps an object store's error to the package's: a missing key
// to ErrNotFound, refused credentials or a denied operation to
// ErrAccessDenied, keeping the service's code in the message.
func s3Error(err error) error {
	if err == nil {
		return nil
	}
	var api smithy.APIError
	if !errors.As(err, &api) {
		return err
	}
	denied := func() error {
		return fmt.Errorf("%w (%s): check the access key, the secret key and the bucket's "+
			"policy: %w", ErrAccessDenied, api.ErrorCode(), err)
	}

	switch api.ErrorCode() {
	case "NoSuchKey", "NotFound":
		return fmt.Errorf("%s: %w", api.ErrorCode(), ErrNotFound)
	// versitygw answers an unknown access key with XAdminUserNotFound
	// where AWS says InvalidAccessKeyId.
	case "InvalidAccessKeyId", "XAdminUserNotFound", "SignatureDoesNotMatch", "AccessDenied",
		"InvalidToken", "ExpiredToken", "InvalidSecurity":
		return denied()
	case "NoSuchBucket":
		return fmt.Errorf("the bucket does not exist: %w", err)
	}
	// A HEAD request's refusal has no body, hence no code but its status.
	var resp *smithyhttp.ResponseError
	if errors.As(err, &resp) {
		if code := resp.HTTPStatusCode(); code == http.StatusForbidden ||
			code == http.StatusUnauthorized {
			return denied()
		}
	}

	return err
}
