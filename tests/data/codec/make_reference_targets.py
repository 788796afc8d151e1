#!/usr/bin/python3
"""Reference MT3 training targets for tests/codec_test.cpp (CodecReference.*).

An independent re-implementation, in plain Python, of how magenta/mt3 builds
per-segment targets (specs/mt3.md §2.3): note events sorted by
(is_drum, program, pitch) with offsets before onsets, single-step shift events
with per-frame start indices (encode_and_index_events), segment slices at the
first frame of each segment (extract_target_sequence_with_indices) with the
encoding state (tie section) prepended, run-length encoding of shifts into
absolute step counts, program dropping for the flat spec, removal of redundant
velocity/program tokens, EOS. Written from the spec's description of that
pipeline (frame-indexed, one shift token per 10 ms), deliberately unlike the
C++ encoder's direct per-segment construction.

Inputs are notes on the 10 ms grid without same-key overlaps, so MT3's float
time sort equals a step sort. Segments lie before the last event (MT3 keeps a
stale state for frames after the last event; the C++ encoder does not).

Run: /usr/bin/python3 tests/data/codec/make_reference_targets.py > tests/data/codec/reference_targets.json
"""
import json
import math
import random

SPS = 100
FPS = 125  # 16 kHz / hop 128


def layout(num_velocity_bins, max_shift_steps=1000):
    sizes = [("shift", max_shift_steps + 1), ("pitch", 128), ("velocity", num_velocity_bins + 1),
             ("tie", 1), ("program", 128), ("drum", 128)]
    first, off = {}, 3
    for name, size in sizes:
        first[name] = off
        off += size
    return first


def velocity_to_bin(v, bins):
    return 0 if v == 0 else math.ceil(bins * v / 127)


def encode(notes, n_frames, frames_per_segment, bins, use_ties, flat):
    # note_sequence_to_onsets_and_offsets_and_programs
    ordered = sorted(notes, key=lambda n: (n["is_drum"], n["program"], n["pitch"]))
    times = [n["offset_s"] for n in ordered if not n["is_drum"]] + [n["onset_s"] for n in ordered]
    values = ([(n["pitch"], 0, n["program"], False) for n in ordered if not n["is_drum"]] +
              [(n["pitch"], n["velocity"], n["program"], n["is_drum"]) for n in ordered])
    idx = sorted(range(len(times)), key=lambda i: times[i])  # stable
    steps = [round(times[i] * SPS) for i in idx]
    values = [values[i] for i in idx]
    frame_times = [i / FPS for i in range(n_frames)]

    active = {}  # (pitch, program) -> velocity bin

    def encode_event(v):
        pitch, vel, program, drum = v
        b = velocity_to_bin(vel, bins)
        if drum:
            return [("velocity", b), ("drum", pitch)]
        active[(pitch, program)] = b
        return [("program", program), ("velocity", b), ("pitch", pitch)]

    def state_events():
        out = []
        for pitch, program in sorted(active.keys(), key=lambda k: k[::-1]):
            if active[(pitch, program)]:
                out += [("program", program), ("pitch", pitch)]
        return out + [("tie", 0)]

    events, state, starts, state_starts = [], [], [], []
    cur_step = cur_event = cur_state = 0

    def fill():
        while len(starts) < len(frame_times) and frame_times[len(starts)] < cur_step / SPS:
            starts.append(cur_event)
            state_starts.append(cur_state)

    for step, v in zip(steps, values):
        while step > cur_step:
            events.append(("shift", 1))
            cur_step += 1
            fill()
            cur_event = len(events)
            cur_state = len(state)
        state.extend(state_events())
        events.extend(encode_event(v))
    while cur_step / SPS <= frame_times[-1]:
        events.append(("shift", 1))
        cur_step += 1
        fill()
        cur_event = len(events)
    ends = starts[1:] + [len(events)]

    segments = []
    for f0 in range(0, n_frames, frames_per_segment):
        f1 = min(f0 + frames_per_segment, n_frames) - 1
        targets = events[starts[f0]:ends[f1]]
        if use_ties:
            s0 = state_starts[f0]
            s1 = s0 + 1
            while state[s1 - 1] != ("tie", 0):
                s1 += 1
            targets = state[s0:s1] + targets
        if flat:
            targets = [e for e in targets if e[0] != "program"]
        # run_length_encode_shifts: absolute step counts before each event group
        out, shift_steps, total = [], 0, 0
        for e in targets:
            if e[0] == "shift":
                shift_steps += 1
                total += 1
                continue
            if shift_steps > 0:
                shift_steps = total
                while shift_steps > 0:
                    piece = min(1000, shift_steps)
                    out.append(("shift", piece))
                    shift_steps -= piece
            out.append(e)
        # remove_redundant_state_changes(['velocity', 'program'])
        last, final = {}, []
        for e in out:
            if e[0] in ("velocity", "program"):
                if last.get(e[0]) == e[1]:
                    continue
                last[e[0]] = e[1]
            final.append(e)
        segments.append(final)
    return segments


def random_case(rng, n_notes, length_steps, flat, drums, frames_per_segment):
    notes, busy = [], {}
    # Segment origins: events exactly on them belong to the new segment.
    origins = [k * frames_per_segment * 128 * SPS // 16000 for k in range(1, 50)]
    origins = [o for o in origins if o < length_steps]
    programs = [0] if flat else [0, 0, 33, 40, 48]
    while len(notes) < n_notes:
        drum = drums and rng.random() < 0.15
        on = rng.randrange(0, length_steps)
        if rng.random() < 0.4:
            on -= on % 25  # many equal-time events
        dur = 1 if drum else rng.choice([1, 2, rng.randrange(1, 60), rng.randrange(50, 800)])
        r = rng.random()
        if r < 0.1:
            on = rng.choice(origins)  # onset on an origin
        elif r < 0.2 and not drum:
            end = rng.choice(origins)  # offset on an origin
            on = max(0, end - dur)
            dur = end - on
        pitch = rng.randrange(30, 90)
        program = 0 if drum else rng.choice(programs)
        key = (drum, program, pitch)
        if not drum and any(not (on + dur <= a or b <= on) for a, b in busy.get(key, [])):
            continue  # keep same-key notes disjoint
        busy.setdefault(key, []).append((on, on + dur))
        notes.append({"onset_s": on / SPS, "offset_s": (on + dur) / SPS, "pitch": pitch,
                      "velocity": rng.randrange(1, 128), "program": program, "is_drum": drum})
    return notes


def main():
    rng = random.Random(20261121)
    configs = [
        ({"num_velocity_bins": 1, "use_ties": True, "program_granularity": "full"}, 256, True),
        ({"num_velocity_bins": 127, "use_ties": False, "program_granularity": "flat"}, 512, False),
        ({"num_velocity_bins": 127, "use_ties": True, "program_granularity": "full"}, 256, True),
        ({"num_velocity_bins": 5, "use_ties": False, "program_granularity": "full"}, 128, True),
    ]
    cases = []
    for cfg, frames_per_segment, drums in configs:
        for _ in range(3):
            flat = cfg["program_granularity"] == "flat"
            length_steps = rng.randrange(600, 1500)
            notes = random_case(rng, rng.randrange(20, 70), length_steps, flat, drums, frames_per_segment)
            last = max(max(round(n["offset_s"] * SPS), round(n["onset_s"] * SPS)) for n in notes)
            n_frames = int((last - 1) / SPS * FPS)  # every frame before the last event step
            segs = encode(notes, n_frames, frames_per_segment, cfg["num_velocity_bins"], cfg["use_ties"], flat)
            first = layout(cfg["num_velocity_bins"])
            ids = [[first[t] + v for t, v in seg] + [1] for seg in segs]
            cases.append({"codec": cfg, "frames_per_segment": frames_per_segment, "n_frames": n_frames,
                          "notes": notes, "segments": ids})
    print(json.dumps({"generator": "tests/data/codec/make_reference_targets.py", "cases": cases}))


if __name__ == "__main__":
    main()
