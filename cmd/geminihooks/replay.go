package main

import (
	"context"
	"encoding/json"
	"fmt"

	"cloud.google.com/go/firestore"
	"cloud.google.com/go/pubsub/v2"
	"github.com/spf13/cobra"

	"github.com/geminihooks/geminihooks/shared/bus"
	"github.com/geminihooks/geminihooks/shared/event"
	"github.com/geminihooks/geminihooks/shared/ledger"
	"github.com/geminihooks/geminihooks/shared/topology"
)

func (a *app) replayCmd() *cobra.Command {
	var jobID, topic string
	cmd := &cobra.Command{
		Use:   "replay (WEBHOOK_ID | --job JOB_ID) [--topic TOPIC]",
		Short: "Re-publish a recorded delivery's event to the events topic",
		Long: `Reads deliveries/{WEBHOOK_ID} from Firestore and publishes the job event it
recorded to the events topic again, with the usual attributes and the job
id as ordering key. With --job, replays the job's most recently received
delivery instead.

Use it after messages went to the dead-letter topic and the cause is fixed.
Consumers de-duplicate per job state, so replaying an event that was already
processed is harmless. PUBSUB_EMULATOR_HOST is honoured.`,
		Example: `  geminihooks replay msg_2KWPBgLlAfxdpx2AI54pPJ85f4W
  geminihooks replay --job batch-abc --topic geminihooks-events`,
		Args: func(cmd *cobra.Command, args []string) error {
			if (len(args) == 1) == (jobID != "") || len(args) > 1 {
				return usageErr("give either WEBHOOK_ID or --job JOB_ID")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			st, err := a.ledgerStore(ctx)
			if err != nil {
				return err
			}
			var d ledger.Delivery
			if jobID != "" {
				d, err = latestDelivery(ctx, st.Client(), jobID)
				if err != nil {
					return fail("find latest delivery of job "+jobID, err)
				}
			} else if d, err = st.GetDelivery(ctx, args[0]); err != nil {
				return fail("get delivery "+args[0], err)
			}
			if len(d.Event) == 0 {
				return inputErr("replay "+d.WebhookID, fmt.Errorf("delivery has no recorded event (status %s)", d.Status))
			}
			var ev event.JobEvent
			if err := json.Unmarshal(d.Event, &ev); err != nil {
				return inputErr("replay "+d.WebhookID, fmt.Errorf("decode recorded event: %w", err))
			}
			ps, err := pubsub.NewClient(ctx, a.project)
			if err != nil {
				return fail("pubsub client", err)
			}
			defer ps.Close()
			pub := bus.NewPubSubPublisher(ps, topic)
			defer pub.Stop()
			id, err := pub.Publish(ctx, bus.Message{Data: d.Event, Attributes: ev.Attributes(), OrderingKey: ev.JobID})
			if err != nil {
				return fail("publish to "+topic, err)
			}
			if a.format == formatJSON {
				return a.printJSON(map[string]string{"webhook_id": ev.WebhookID, "job_id": ev.JobID, "type": ev.Type, "topic": topic, "message_id": id})
			}
			fmt.Fprintf(a.stdout, "Published %s of job %s (delivery %s) to %s as message %s.\n", ev.Type, ev.JobID, ev.WebhookID, topic, id)
			return nil
		},
	}
	cmd.Flags().StringVar(&jobID, "job", "", "replay the latest delivery of this job")
	cmd.Flags().StringVar(&topic, "topic", topology.Default("").EventsTopic(), "events topic id")
	return cmd
}

// latestDelivery finds the job's most recently received delivery that has
// an event. It filters on job_id only and picks the newest locally, so no
// composite index is needed; a job has a handful of deliveries.
func latestDelivery(ctx context.Context, c *firestore.Client, jobID string) (ledger.Delivery, error) {
	snaps, err := c.Collection(ledger.DeliveriesCollection).Where("job_id", "==", jobID).Documents(ctx).GetAll()
	if err != nil {
		return ledger.Delivery{}, fmt.Errorf("firestore query %s: %w", ledger.DeliveriesCollection, err)
	}
	var best ledger.Delivery
	found := false
	for _, s := range snaps {
		var d ledger.Delivery
		if err := s.DataTo(&d); err != nil {
			return ledger.Delivery{}, fmt.Errorf("decode %s: %w", s.Ref.Path, err)
		}
		if len(d.Event) == 0 {
			continue
		}
		if !found || d.ReceivedAt.After(best.ReceivedAt) {
			best, found = d, true
		}
	}
	if !found {
		return ledger.Delivery{}, fmt.Errorf("no delivery with an event for job %s: %w", jobID, ledger.ErrNotFound)
	}
	return best, nil
}
