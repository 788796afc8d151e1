#!/usr/bin/env python3
"""The HTML score report in a real browser (headless Chromium).

Usage: report_browser_test.py TUNESCRIBE_BIN OUT_DIR
Builds a small batch (mir_eval .txt pairs, JSON pairs with instruments and drums, one broken pair,
one unpaired file), runs `tunescribe score --json --report`, loads the page in headless Chromium
and checks:
  - no console message and no uncaught error (the page logs nothing when it works),
  - the inline script ran (body data-js="done") and found every overlay consistent with the
    counts (data-check-bad="0", data-check-ok = pairs with notes),
  - the DOM's numbers are the JSON's: one table row per scored file, matched / missed / false
    alarms drawn per file = Recall_no_offset x n_ref, n_ref - that, n_est - that,
  - #sort=n_ref-desc in the URL sorts the table,
  - the failed pair is listed with its reason;
then saves a screenshot PNG under OUT_DIR. Exit 77 (skipped) when Chromium is absent.
"""
import json
import os
import random
import re
import shutil
import subprocess
import sys

SKIP = 77


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name) or (("/usr/bin/" + name) if os.access("/usr/bin/" + name, os.X_OK) else None)
        if path:
            return path
    return None


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def make_batch(root, rng):
    ref, est = os.path.join(root, "ref"), os.path.join(root, "est")
    shutil.rmtree(root, ignore_errors=True)
    for k in range(6):  # mir_eval .txt pairs: some hits, some misses, some false alarms
        rows_r, rows_e = [], []
        t = 0.0
        for _ in range(20 + 5 * k):
            p = rng.randint(48, 84)
            d = rng.choice([0.25, 0.5, 1.0])
            rows_r.append((t, t + d, p))
            r = rng.random()
            if r < 0.7:
                rows_e.append((t + rng.uniform(-0.03, 0.03), t + d, p))
            elif r < 0.85:
                rows_e.append((t, t + d, p + 1))
            t += rng.choice([0.25, 0.5])
        for _ in range(k):
            rows_e.append((rng.uniform(0, t), rng.uniform(0, t) + 5, rng.randint(40, 90)))
        hz = lambda m: 440.0 * 2 ** ((m - 69) / 12.0)
        write(os.path.join(ref, "piece%02d.txt" % k), "".join("%.4f %.4f %.4f\n" % (a, max(b, a + 0.05), hz(p)) for a, b, p in rows_r))
        write(os.path.join(est, "piece%02d.txt" % k), "".join("%.4f %.4f %.4f\n" % (max(0, a), max(b, a + 0.05), hz(p)) for a, b, p in rows_e))
    for k in range(2):  # JSON with instruments and drums
        notes_r, notes_e = [], []
        for i in range(30):
            prog, drum = rng.choice([(0, False), (40, False), (0, True)])
            pitch = rng.choice([36, 38, 42]) if drum else rng.randint(55, 80)
            n = {"onset_s": i * 0.3, "offset_s": i * 0.3 + 0.25, "pitch": pitch, "velocity": 90, "program": prog, "is_drum": drum}
            notes_r.append(n)
            if rng.random() < 0.8:
                notes_e.append(dict(n, onset_s=n["onset_s"] + 0.01))
        write(os.path.join(ref, "band%d.json" % k), json.dumps({"notes": notes_r}))
        write(os.path.join(est, "band%d.json" % k), json.dumps({"notes": notes_e}))
    write(os.path.join(ref, "zz_broken.txt"), "0.0 0.5 440\n")
    write(os.path.join(est, "zz_broken.txt"), "not a note file at all\n")
    write(os.path.join(ref, "lonely.txt"), "0.0 0.5 440\n")
    return ref, est


def run_chromium(browser, url, out_dir, extra):
    profile = os.path.join(out_dir, "chromium-profile")
    cmd = [browser, "--headless", "--disable-gpu", "--no-sandbox", "--disable-dev-shm-usage",
           "--user-data-dir=" + profile, "--enable-logging=stderr", "--v=0", "--no-first-run",
           "--virtual-time-budget=10000"] + extra + [url]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    binary, out_dir = sys.argv[1], os.path.abspath(sys.argv[2])
    browser = chromium()
    if not browser:
        print("chromium is not installed: skipped")
        return SKIP
    os.makedirs(out_dir, exist_ok=True)
    ref, est = make_batch(os.path.join(out_dir, "batch"), random.Random(17))
    report = os.path.join(out_dir, "report.html")
    if os.path.exists(report):
        os.remove(report)
    sc = subprocess.run([binary, "score", "--ref-dir", ref, "--est-dir", est, "--json", "--report", report],
                        capture_output=True, text=True, timeout=300)
    failures = []
    def check(ok, what):
        if not ok:
            failures.append(what)
            print("FAIL:", what)
    check(sc.returncode == 2, "score exits 2 when a pair failed (got %d: %s)" % (sc.returncode, sc.stderr))
    if not os.path.exists(report):
        print("no report written:", sc.stderr)
        return 1
    data = json.loads(sc.stdout)
    files = data["files"]
    check(len(files) == 8, "8 pairs scored (got %d)" % len(files))
    check(len(data["errors"]) == 1, "one failed pair in the JSON")

    url = "file://" + report + "#sort=n_ref-desc"
    res = run_chromium(browser, url, out_dir, ["--dump-dom"])
    dom = res.stdout
    check(res.returncode == 0 and "<body" in dom, "chromium dumped the DOM (rc %d)" % res.returncode)
    console = [l for l in res.stderr.splitlines() if "CONSOLE" in l or "Uncaught" in l]
    check(not console, "no console messages or errors: %s" % console[:5])
    body = re.search(r"<body([^>]*)>", dom)
    battrs = dict(re.findall(r'([\w-]+)="([^"]*)"', body.group(1))) if body else {}
    check(battrs.get("data-js") == "done", "the inline script ran (data-js=%r)" % battrs.get("data-js"))
    check("data-js-errors" not in battrs, "no JS errors recorded")
    check(battrs.get("data-check-bad") == "0", "every overlay matches its counts (bad=%r)" % battrs.get("data-check-bad"))
    check(battrs.get("data-check-ok") == str(len(files)), "every pair has a checked overlay (ok=%r)" % battrs.get("data-check-ok"))
    check(battrs.get("data-rows-rendered") == str(len(files)), "one table row per scored pair (%r)" % battrs.get("data-rows-rendered"))
    check(battrs.get("data-failures") == "1", "the failure is counted")
    check("zz_broken" in dom and 'id="failures" data-count="1"' in dom, "the failed pair is listed with its reason")
    check("lonely.txt" in dom, "the unpaired file is listed")

    sections = {m.group(1): m.group(0) for m in re.finditer(r'<section class="file"[^>]*data-stem="([^"]*)"[^>]*>', dom)}
    total = [0, 0, 0]
    for f in files:
        n_ref, n_est = f["n_ref"], f["n_est"]
        matched = round(f["transcription"]["Recall_no_offset"] * n_ref)
        want = "%d,%d,%d" % (matched, n_ref - matched, n_est - matched)
        sec = sections.get(f["stem"], "")
        got = re.search(r'data-drawn="([^"]*)"', sec)
        check(got is not None and got.group(1) == want, "%s: drawn %s, JSON says %s" % (f["stem"], got.group(1) if got else None, want))
        check('data-check="ok"' in sec, "%s: the page's own check passed" % f["stem"])
        for i, v in enumerate((matched, n_ref - matched, n_est - matched)):
            total[i] += v
    check(battrs.get("data-matched") == str(total[0]) and battrs.get("data-missed") == str(total[1])
          and battrs.get("data-extra") == str(total[2]), "page totals %s equal the JSON's %s" %
          ([battrs.get(k) for k in ("data-matched", "data-missed", "data-extra")], total))

    # Sorted by n_ref, descending (the URL asked for it).
    tbody = dom[dom.find('<table id="files"'):]
    tbody = tbody[tbody.find("<tbody>"):tbody.find("</tbody>")]
    n_refs = [int(v) for v in re.findall(r'<tr><td data-v="[^"]*"><a [^>]*>[^<]*</a></td><td data-v="(\d+)"', tbody)]
    check(len(n_refs) == len(files) and n_refs == sorted(n_refs, reverse=True), "table sorted by n_ref desc: %s" % n_refs)
    check('data-sorted-by="n_ref-desc"' in dom, "the table says how it is sorted")

    png = os.path.join(out_dir, "report.png")
    if os.path.exists(png):
        os.remove(png)
    shot = run_chromium(browser, "file://" + report, out_dir, ["--screenshot=" + png, "--window-size=1280,2400",
                                                               "--hide-scrollbars"])
    ok_png = os.path.exists(png) and open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n" and os.path.getsize(png) > 10000
    check(ok_png, "screenshot saved (%s, rc %d)" % (png, shot.returncode))
    print("report: %s (%d bytes), screenshot: %s" % (report, os.path.getsize(report), png))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
