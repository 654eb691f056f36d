package s3test

import (
	"errors"
	"slices"
	"syscall"
	"testing"

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
