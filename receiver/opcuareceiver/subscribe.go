package opcuareceiver

import (
	"context"
	"math"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/ua"
	"go.uber.org/zap"

	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
)

// subscribe creates the session's subscription and one monitored item per usable reading, in batches
// of the server's MaxMonitoredItemsPerCall. The client handle of an item is its index in s.items + 1.
func (r *opcuaReceiver) subscribe(ctx context.Context, p *device.Poll, s *session) error {
	if err := r.createSubscription(ctx, p, s); err != nil {
		return err
	}
	sub := s.sub
	q := p.StartRequest("opcua.create_monitored_items").Attr("opcua.service", "CreateMonitoredItems")
	q.Attr("opcua.publishing_interval_ms", sub.RevisedPublishingInterval.Milliseconds())
	ts := timestampsToReturn(r.cfg.Timestamp)
	var reqs []*ua.MonitoredItemCreateRequest
	var its []*item
	var sum statusSummary
	created := 0
	flush := func() error {
		if len(reqs) == 0 {
			return nil
		}
		res, err := sub.Monitor(ctx, ts, reqs...)
		if err != nil {
			return classify(err)
		}
		for i, it := range its {
			if i >= len(res.Results) || res.Results[i] == nil {
				it.err, it.status = device.Errorf(device.ErrProtocol, "no result for the monitored item"), "BadUnexpectedError"
				continue
			}
			if st := res.Results[i].StatusCode; isBad(st) {
				it.err, it.status = st, statusName(st)
				sum.add(st, it.spec.ref.text)
				r.logger.Warn("The server refused the monitored item of a node", zap.String("node", it.spec.ref.text), zap.String("status", it.status))
				continue
			}
			created++
		}
		reqs, its = reqs[:0], its[:0]
		return nil
	}
	for i, it := range s.items {
		if it.err != nil {
			continue
		}
		reqs = append(reqs, monitoredItemRequest(it, uint32(i+1)))
		its = append(its, it)
		if len(reqs) >= s.maxItems {
			if err := flush(); err != nil {
				q.End(err)
				return err
			}
		}
	}
	if err := flush(); err != nil {
		q.End(err)
		return err
	}
	sum.annotate(q, p)
	q.Attr("opcua.nodes", created)
	q.End(nil)
	return nil
}

// createSubscription creates the session's subscription (once: data items and event items share it).
func (r *opcuaReceiver) createSubscription(ctx context.Context, p *device.Poll, s *session) error {
	if s.sub != nil {
		return nil
	}
	q := p.StartRequest("opcua.create_subscription").Attr("opcua.service", "CreateSubscription")
	sc := r.cfg.Subscription
	s.notifs = make(chan *opcua.PublishNotificationData, notifyQueueSize)
	sub, err := s.client.Subscribe(ctx, &opcua.SubscriptionParameters{
		Interval:                   sc.PublishingInterval,
		LifetimeCount:              sc.LifetimeCount,
		MaxKeepAliveCount:          sc.KeepAliveCount,
		MaxNotificationsPerPublish: sc.MaxNotificationsPerPublish,
	}, s.notifs)
	if err != nil {
		err = classify(err)
		q.End(err)
		return err
	}
	s.sub = sub
	q.Attr("opcua.publishing_interval_ms", sub.RevisedPublishingInterval.Milliseconds())
	q.End(nil)
	if ka := time.Duration(sub.RevisedMaxKeepAliveCount) * sub.RevisedPublishingInterval; ka >= r.requestTimeout() && !r.warnedKeepAlive {
		r.warnedKeepAlive = true
		r.logger.Warn("The server lengthened the subscription's keep-alive period to the publish timeout or beyond; a subscription with nothing to report may time out and be rebuilt. Lower subscription.keep_alive_count or raise subscription.publishing_interval to what the server grants",
			zap.Duration("keep_alive_period", ka), zap.Duration("publish_timeout", r.requestTimeout()),
			zap.Duration("revised_publishing_interval", sub.RevisedPublishingInterval), zap.Uint32("revised_keep_alive_count", sub.RevisedMaxKeepAliveCount))
	}
	return nil
}

// monitoredItemRequest builds the request of one reading's monitored item.
func monitoredItemRequest(it *item, handle uint32) *ua.MonitoredItemCreateRequest {
	m := it.spec.item
	if sc := it.spec.conv.Factor; m.Deadband.Type == DeadbandAbsolute && sc != 0 {
		// The deadband is configured in the reading's unit, after scale; the server compares raw values.
		// A percent deadband is a share of the node's EURange and needs no conversion.
		m.Deadband.Value /= math.Abs(sc)
	}
	sampling := -1.0 // unset: the publishing interval
	if m.SamplingInterval != nil {
		sampling = float64(*m.SamplingInterval) / float64(time.Millisecond) // 0: the server's fastest rate
	}
	params := &ua.MonitoringParameters{
		ClientHandle:     handle,
		SamplingInterval: sampling,
		QueueSize:        device.Layer(1, m.QueueSize),
		DiscardOldest:    true,
	}
	if f := dataChangeFilter(m); f != nil {
		params.Filter = ua.NewExtensionObject(f)
	}
	return &ua.MonitoredItemCreateRequest{
		ItemToMonitor:       it.rv,
		MonitoringMode:      ua.MonitoringModeReporting,
		RequestedParameters: params,
	}
}

// dataChangeFilter is the filter for the trigger and deadband, nil for the server's default
// (status_value, no deadband).
func dataChangeFilter(m MonitoredItemDefaults) *ua.DataChangeFilter {
	f := &ua.DataChangeFilter{Trigger: ua.DataChangeTriggerStatusValue}
	switch m.Trigger {
	case TriggerStatus:
		f.Trigger = ua.DataChangeTriggerStatus
	case TriggerStatusValueTimestamp:
		f.Trigger = ua.DataChangeTriggerStatusValueTimestamp
	}
	switch m.Deadband.Type {
	case DeadbandAbsolute:
		f.DeadbandType, f.DeadbandValue = uint32(ua.DeadbandTypeAbsolute), m.Deadband.Value
	case DeadbandPercent:
		f.DeadbandType, f.DeadbandValue = uint32(ua.DeadbandTypePercent), m.Deadband.Value
	}
	if f.Trigger == ua.DataChangeTriggerStatusValue && f.DeadbandType == 0 {
		return nil
	}
	return f
}
