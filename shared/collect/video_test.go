package collect_test

import (
	"context"
	"strings"
	"testing"

	"github.com/fsouza/fake-gcs-server/fakestorage"

	"github.com/geminihooks/geminihooks/shared/collect"
)

// TestGCSVideosPutDoesNotOverwrite: the Collector may only create objects
// (roles/storage.objectCreator), so a redelivery after a successful copy must
// neither replace the object nor fail: Put writes with a does-not-exist
// precondition and takes 412 as done, still reading the source to its end.
func TestGCSVideosPutDoesNotOverwrite(t *testing.T) {
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{Host: "127.0.0.1", Scheme: "http"})
	if err != nil {
		t.Fatalf("fake gcs: %v", err)
	}
	t.Cleanup(srv.Stop)
	srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: "vids"})
	v := collect.NewGCSVideos(srv.Client(), "vids")
	ctx := context.Background()
	const object = "videos/video-op1/0.mp4"

	first := strings.Repeat("first!", 1000)
	uri, err := v.Put(ctx, object, "video/mp4", strings.NewReader(first))
	if err != nil || uri != "gs://vids/"+object {
		t.Fatalf("first Put = %q, %v", uri, err)
	}
	before, err := srv.GetObject("vids", object)
	if err != nil {
		t.Fatal(err)
	}

	// The retry streams the same video again (here: different bytes, to see
	// that nothing is written).
	second := strings.NewReader(strings.Repeat("again!", 3000))
	uri, err = v.Put(ctx, object, "video/mp4", second)
	if err != nil || uri != "gs://vids/"+object {
		t.Fatalf("Put over an existing object = %q, %v; want success (412 is done)", uri, err)
	}
	if second.Len() != 0 {
		t.Errorf("source not read to its end after 412: %d bytes left (the byte count would be wrong)", second.Len())
	}
	after, err := srv.GetObject("vids", object)
	if err != nil || string(after.Content) != first || after.Generation != before.Generation {
		t.Errorf("object replaced: err %v, generation %d → %d, content changed %v", err, before.Generation, after.Generation, string(after.Content) != first)
	}

	// A missing bucket is an error the caller retries, not a 412.
	if _, err := collect.NewGCSVideos(srv.Client(), "missing").Put(ctx, object, "video/mp4", strings.NewReader("x")); err == nil {
		t.Error("Put into a missing bucket succeeded")
	}
}
