-- Each usage-log row keeps every upstream attempt of its request (route, outcome, latency) as
-- a JSON array, so an operator can see which routes were tried and which one served.
ALTER TABLE usage_log ADD COLUMN attempts TEXT;
