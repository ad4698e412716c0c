package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"

	"github.com/geminihooks/geminihooks/internal/testenv"
	"github.com/geminihooks/geminihooks/shared/event"
	"github.com/geminihooks/geminihooks/shared/ledger"
)

func TestReplay(t *testing.T) {
	fs, project := testenv.Firestore(t)
	st := ledger.New(fs, ledger.Options{})
	ps, srv := testenv.PubSub(t, project)
	t.Setenv("PUBSUB_EMULATOR_HOST", srv.Addr)
	ctx := context.Background()
	topic := "geminihooks-events"
	if _, err := ps.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: "projects/" + project + "/topics/" + topic}); err != nil {
		t.Fatal(err)
	}
	ref, _ := event.RefForName(event.KindBatch, "batches/abc")
	base := time.Now().Add(-time.Minute)
	for i, typ := range []string{event.TypeBatchFailed, event.TypeBatchSucceeded} {
		ev := event.JobEvent{SchemaVersion: event.SchemaVersion, WebhookID: "msg_" + typ, Type: typ, JobID: ref.ID,
			Kind: event.KindBatch, GeminiName: ref.Name, ReceivedAt: base.Add(time.Duration(i) * time.Second)}
		ev.State, _ = event.StateOf(typ)
		if _, err := st.Record(ctx, ev, "hmac"); err != nil {
			t.Fatal(err)
		}
	}

	r := mustCLI(t, "--project", project, "replay", "msg_batch.failed")
	if !strings.Contains(r.stdout, "Published batch.failed of job "+ref.ID) {
		t.Errorf("stdout = %q", r.stdout)
	}
	r = mustCLI(t, "--project", project, "--format", "json", "replay", "--job", ref.ID, "--topic", topic)
	var out map[string]string
	decodeJSON(t, r.stdout, &out)
	if out["webhook_id"] != "msg_batch.succeeded" || out["message_id"] == "" {
		t.Errorf("json = %v, want the latest delivery", out)
	}

	msgs := srv.Messages()
	if len(msgs) != 2 {
		t.Fatalf("published %d messages, want 2", len(msgs))
	}
	m := msgs[1]
	var ev event.JobEvent
	if err := json.Unmarshal(m.Data, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.WebhookID != "msg_batch.succeeded" || ev.JobID != ref.ID || m.OrderingKey != ref.ID ||
		m.Attributes[event.AttrEventType] != event.TypeBatchSucceeded || m.Attributes[event.AttrJobID] != ref.ID {
		t.Errorf("message = %+v attrs %v, event %+v", m, m.Attributes, ev)
	}

	for _, args := range [][]string{{"replay", "msg_unknown"}, {"replay", "--job", "batch-none"}} {
		r = cli(t, append([]string{"--project", project}, args...)...)
		if r.code != exitRuntime || !strings.Contains(r.stderr, "(fix the input)") {
			t.Errorf("%v: exit %d stderr %q", args, r.code, r.stderr)
		}
	}
}
