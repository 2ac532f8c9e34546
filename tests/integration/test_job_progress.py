"""GET /v1/admin/jobs/{job}/runs/{as_of}: a run's progress as the runner saves it after every page
(issue 16, second pass: the console polls it while its POST runs the job)."""

from __future__ import annotations

import datetime as dt

PROGRESS = "/v1/admin/jobs/{job}/runs/{as_of}"


def test_before_during_and_after_a_real_run(api, monkeypatch):
    from chalicelib import jobs, wiring
    from chalicelib.settings import get_settings

    seen: list[dict] = []

    def step(ctx: jobs.JobContext) -> jobs.Step:
        page = int(ctx.state.get("page", 0)) + 1
        if page == 3:  # two pages saved, the third working: what a watcher sees now
            answer = api.staff("GET", PROGRESS.format(job="count-three", as_of="2031-02-03"))
            assert answer.status_code == 200
            seen.append(answer.json)
        return jobs.Step(done=page == 3, state={"page": page}, summary={"counted": 10, "stage": f"page {page}"})

    real = wiring.daily_jobs()
    monkeypatch.setattr(wiring, "daily_jobs", lambda: {**real, "count-three": jobs.Job("count-three", step)})
    before = api.staff("GET", PROGRESS.format(job="count-three", as_of="2031-02-03"))
    assert before.status_code == 200
    assert before.json == {"job": "count-three", "as_of": "2031-02-03", "status": "none", "summary": {}, "pages": 0,
                           "invocations": 0, "working": False, "started_at": None, "saved_at": None,
                           "finished_at": None}
    final = jobs.run_job(get_settings(), wiring.daily_jobs(), "demo", "count-three", dt.date(2031, 2, 3))
    assert final["complete"] and final["counted"] == 30
    [during] = seen
    assert during["status"] == "running" and during["working"] is True
    assert during["pages"] == 2 and during["invocations"] == 1
    assert during["summary"] == {"counted": 20, "stage": "page 2"}
    assert during["started_at"] and during["saved_at"] and during["finished_at"] is None
    after = api.staff("GET", PROGRESS.format(job="count-three", as_of="2031-02-03")).json
    assert after["status"] == "done" and after["working"] is False
    assert after["pages"] == 3 and after["summary"] == {"counted": 30, "stage": "page 3"}
    assert after["finished_at"] >= after["saved_at"] >= after["started_at"]


def test_a_run_stopped_part_way_is_running_but_not_working(api, monkeypatch):
    from chalicelib import jobs, wiring
    from chalicelib.settings import get_settings

    def step(ctx: jobs.JobContext) -> jobs.Step:
        page = int(ctx.state.get("page", 0)) + 1
        return jobs.Step(done=page == 2, state={"page": page}, summary={"counted": 1})

    real = wiring.daily_jobs()
    monkeypatch.setattr(wiring, "daily_jobs", lambda: {**real, "two-pages": jobs.Job("two-pages", step)})
    # A deadline already past: the run saves its first page and stops (as at a Lambda's timeout).
    first = jobs.run_job(get_settings(), wiring.daily_jobs(), "demo", "two-pages", dt.date(2031, 2, 4), deadline=0)
    assert first["complete"] is False
    stopped = api.staff("GET", PROGRESS.format(job="two-pages", as_of="2031-02-04")).json
    assert (stopped["status"], stopped["working"], stopped["pages"], stopped["summary"]) == ("running", False, 1,
                                                                                          {"counted": 1})
    # Resumed through the staff route: a second invocation, the counters go on from the record.
    done = api.staff("POST", "/v1/admin/jobs/two-pages/runs", {"as_of": "2031-02-04"}).json
    assert done["complete"] and done["counted"] == 2
    after = api.staff("GET", PROGRESS.format(job="two-pages", as_of="2031-02-04")).json
    assert (after["status"], after["pages"], after["invocations"]) == ("done", 2, 2)


def test_a_run_through_the_staff_route_then_its_progress(api):
    answer = api.staff("POST", "/v1/admin/jobs/tier-review/runs", {"as_of": "2031-03-01"})
    assert answer.status_code == 200
    progress = api.staff("GET", PROGRESS.format(job="tier-review", as_of="2031-03-01")).json
    assert progress["status"] == "done" and progress["pages"] >= 1
    core = {"job", "as_of", "complete", "replayed"}
    assert progress["summary"] == {k: v for k, v in answer.json.items() if k not in core}


def test_unknown_job_and_bad_days(api):
    assert api.staff("GET", PROGRESS.format(job="nope", as_of="2031-02-03")).status_code == 404
    for bad in ("2031-02-30", "20310203", "tomorrow"):
        answer = api.staff("GET", PROGRESS.format(job="reconcile", as_of=bad))
        assert answer.status_code == 400, bad
        assert answer.json["error"]["code"]
