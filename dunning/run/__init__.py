"""The job: plan and enqueue, the delivery loop, worker processes."""
