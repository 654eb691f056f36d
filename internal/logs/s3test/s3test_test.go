package s3test

import (
	"errors"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

func TestServerLifecycle(t *testing.T) {
	s := Start(t)
	ctx := t.Context()

	s.CreateBucket(t, "probe")
	out, err := s.Client().ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil {
		t.Fatal(err)
	}
	names := []string{}
	for _, b := range out.Buckets {
		names = append(names, aws.ToString(b.Name))
	}
	if !slices.Contains(names, "probe") {
		t.Errorf("buckets = %v, want probe among them", names)
	}

	// The generated credentials are the only ones it takes.
	wrong := s3.New(s3.Options{
		BaseEndpoint: aws.String(s.Endpoint), Region: Region, UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(s.AccessKey, "wrong", ""),
	})
	if _, err := wrong.ListBuckets(ctx, &s3.ListBucketsInput{}); err == nil {
		t.Error("a wrong secret key was accepted")
	}

	pid := s.cmd.Process.Pid
	s.Stop()
	if !s.Exited() {
		t.Error("the server runs on after Stop")
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("process %d is still there after Stop: %v", pid, err)
	}
	// Stop again, as t.Cleanup will, returns at once.
	s.Stop()
}

func TestAgeUpload(t *testing.T) {
	s := Start(t)
	ctx := t.Context()
	s.CreateBucket(t, "aged")
	c := s.Client()

	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: aws.String("aged"), Key: aws.String("a/b.log.gz"),
	})
	if err != nil {
		t.Fatal(err)
	}
	s.AgeUpload(t, "aged", aws.ToString(up.UploadId), 25*time.Hour)

	out, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{
		Bucket: aws.String("aged"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Uploads) != 1 {
		t.Fatalf("%d uploads listed, want 1", len(out.Uploads))
	}
	// Listings carry whole seconds.
	age := time.Since(aws.ToTime(out.Uploads[0].Initiated))
	if age < 25*time.Hour-time.Second || age > 25*time.Hour+time.Minute {
		t.Errorf("the upload is listed as begun %s ago, want 25h", age)
	}
}
