-- Job counts per UTC period, so the usage page reads a few thousand rows
-- however many jobs an organization has. The one write path for jobs
-- (server/src/jobs.rs) updates them in the transaction that writes the
-- jobs, so they always equal a count over the jobs table.
--
-- Periods are UTC days, hours and quarter hours. Every time zone in use
-- today is offset from UTC by a whole number of quarter hours, so a local
-- hour or day is a union of these periods; the usage query reads the
-- minutes left at a bucket's edges, if any, from the jobs table.

-- Per model and status, for the model table: days, hours and quarter hours.
CREATE TABLE job_counts_by_model (
    org_id INTEGER NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    -- The period's length: 86400000 (day), 3600000 (hour) or 900000 (quarter hour).
    period_ms INTEGER NOT NULL,
    -- The period's start, a multiple of period_ms.
    start_ms INTEGER NOT NULL,
    model TEXT NOT NULL,
    status TEXT NOT NULL,
    -- Jobs submitted in the period with this model and status; 0 once all
    -- of them have moved on to a later status.
    jobs INTEGER NOT NULL,
    gpu_ms INTEGER NOT NULL,
    PRIMARY KEY (org_id, period_ms, start_ms, model, status)
) WITHOUT ROWID;

-- Per status only, for the chart: hours and quarter hours.
CREATE TABLE job_counts (
    org_id INTEGER NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    period_ms INTEGER NOT NULL,
    start_ms INTEGER NOT NULL,
    status TEXT NOT NULL,
    jobs INTEGER NOT NULL,
    gpu_ms INTEGER NOT NULL,
    PRIMARY KEY (org_id, period_ms, start_ms, status)
) WITHOUT ROWID;

-- Counts for the jobs stored before this migration.
-- Starts are rounded down, also for times before 1970.
WITH periods (period_ms) AS (VALUES (86400000), (3600000), (900000))
INSERT INTO job_counts_by_model (org_id, period_ms, start_ms, model, status, jobs, gpu_ms)
SELECT org_id, period_ms,
       submitted_at - ((submitted_at % period_ms) + period_ms) % period_ms AS start_ms,
       model, status, COUNT(*), COALESCE(SUM(gpu_ms), 0)
FROM jobs CROSS JOIN periods
GROUP BY org_id, period_ms, start_ms, model, status;

INSERT INTO job_counts (org_id, period_ms, start_ms, status, jobs, gpu_ms)
SELECT org_id, period_ms, start_ms, status, SUM(jobs), SUM(gpu_ms)
FROM job_counts_by_model
WHERE period_ms IN (3600000, 900000)
GROUP BY org_id, period_ms, start_ms, status;
