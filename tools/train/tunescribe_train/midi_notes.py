"""MIDI <-> note lists for the training pipeline (Python side; NOT the token codec).

read_tracks(path) -> list of Track(name, index, notes) with notes as
  [onset_s, offset_s, pitch, velocity] (float, float, int, int), per (track, channel),
  with the sustain pedal (CC64 >= 64 = down) applied to the durations the way MT3 prepares
  MAESTRO (a note released while the pedal is down lasts until the pedal is lifted or the same
  pitch is struck again). Tempo maps are honoured (tempo events from every track).
write_midi(path, channels, end_s) writes a type-1 MIDI at 120 bpm / 480 ticks per beat
  (960 ticks per second, ~1 ms resolution): one track per channel, each with timed program changes
  and controller settings, and the notes. The sustain pedal is never written: durations already
  include it, so the rendered audio and the codec's targets describe the same notes.
"""
from dataclasses import dataclass, field
from typing import List, Tuple

import mido

TICKS_PER_BEAT = 480
TEMPO_US = 500000
TICKS_PER_SECOND = TICKS_PER_BEAT * 1e6 / TEMPO_US  # 960


@dataclass
class Track:
    name: str
    index: int
    channel: int
    notes: List[list] = field(default_factory=list)  # [onset_s, offset_s, pitch, velocity]


def _tempo_map(mid: mido.MidiFile):
    events = []
    for tr in mid.tracks:
        tick = 0
        for msg in tr:
            tick += msg.time
            if msg.type == "set_tempo":
                events.append((tick, msg.tempo))
    events.sort(key=lambda e: e[0])
    # piecewise: (start_tick, start_seconds, tempo)
    segs = [(0, 0.0, 500000)]
    for tick, tempo in events:
        t0, s0, tp = segs[-1]
        s = s0 + (tick - t0) * tp / 1e6 / mid.ticks_per_beat
        if tick == t0:
            segs[-1] = (t0, s0, tempo)
        else:
            segs.append((tick, s, tempo))
    return segs


def _ticks_to_s(segs, tpb):
    import bisect
    starts = [s[0] for s in segs]

    def conv(tick):
        i = bisect.bisect_right(starts, tick) - 1
        t0, s0, tp = segs[i]
        return s0 + (tick - t0) * tp / 1e6 / tpb
    return conv


def _apply_sustain(raw_notes, pedal_events):
    """raw_notes: [on, off, pitch, vel]; pedal_events: sorted [(time, down_bool)]."""
    if not pedal_events:
        return raw_notes
    # pedal-down intervals
    intervals = []
    down_at = None
    for t, down in pedal_events:
        if down and down_at is None:
            down_at = t
        elif not down and down_at is not None:
            intervals.append((down_at, t))
            down_at = None
    if down_at is not None:
        intervals.append((down_at, float("inf")))
    import bisect
    starts = [a for a, _ in intervals]
    out = []
    for on, off, p, v in raw_notes:
        i = bisect.bisect_right(starts, off) - 1
        if i >= 0 and intervals[i][0] <= off < intervals[i][1]:
            off = intervals[i][1]
        out.append([on, off, p, v])
    # a re-struck pitch ends the sustained earlier note
    out.sort(key=lambda n: (n[2], n[0]))
    for a, b in zip(out, out[1:]):
        if a[2] == b[2] and a[1] > b[0]:
            a[1] = b[0]
    last = max((n[1] for n in out if n[1] != float("inf")), default=0.0)
    for n in out:
        if n[1] == float("inf"):
            n[1] = max(last, n[0] + 0.1)
    return [n for n in out if n[1] > n[0]]


def read_tracks(path: str) -> List[Track]:
    return tracks_of(mido.MidiFile(path))


def program_changes(mid) -> dict:
    """{channel: [(time_s, program)]} of a MIDI file (path or mido.MidiFile) written by write_midi
    (one tempo), e.g. a rendered job MIDI, which sets programs at each excerpt's origin."""
    if not isinstance(mid, mido.MidiFile):
        mid = mido.MidiFile(mid)
    changes = {}
    for tr in mid.tracks:
        tick = 0
        for msg in tr:
            tick += msg.time
            if msg.type == "program_change":
                t = mido.tick2second(tick, mid.ticks_per_beat, TEMPO_US)
                changes.setdefault(msg.channel, []).append((t, msg.program))
    return {ch: sorted(v) for ch, v in changes.items()}


def program_at(changes, channel, t):
    """The channel's program in force at time t."""
    prog = 0
    for when, p in changes.get(channel, []):
        if when <= t + 1e-6:
            prog = p
    return prog


def tracks_of(mid: mido.MidiFile) -> List[Track]:
    conv = _ticks_to_s(_tempo_map(mid), mid.ticks_per_beat)
    tracks = []
    for ti, tr in enumerate(mid.tracks):
        name = ""
        tick = 0
        per_channel = {}
        for msg in tr:
            tick += msg.time
            if msg.type == "track_name":
                name = msg.name
            if msg.is_meta or not hasattr(msg, "channel") or msg.channel == 9:
                continue
            st = per_channel.setdefault(msg.channel, {"open": {}, "notes": [], "pedal": []})
            t = conv(tick)
            if msg.type == "note_on" and msg.velocity > 0:
                st["open"].setdefault(msg.note, []).append((t, msg.velocity))
            elif msg.type == "note_off" or (msg.type == "note_on" and msg.velocity == 0):
                q = st["open"].get(msg.note)
                if q:
                    on, vel = q.pop(0)
                    st["notes"].append([on, t, msg.note, vel])
            elif msg.type == "control_change" and msg.control == 64:
                st["pedal"].append((t, msg.value >= 64))
        for ch, st in sorted(per_channel.items()):
            notes = _apply_sustain(st["notes"], st["pedal"])
            notes = [n for n in notes if n[1] - n[0] > 1e-3]
            if notes:
                notes.sort(key=lambda n: (n[0], n[2]))
                tracks.append(Track(name=name.strip(), index=ti, channel=ch, notes=notes))
    return tracks


def write_midi(path: str, channels: List[dict], end_s: float) -> None:
    """channels: [{"channel": c, "events": [(time_s, kind, a, b)]}] with kind in
    "program" (a=program), "cc" (a=control, b=value), "note" (a=pitch, b=velocity, plus offset via
    a separate "off" event). Notes are given as ("note", on_s, off_s, pitch, vel) entries in "notes"."""
    mid = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
    meta = mido.MidiTrack()
    meta.append(mido.MetaMessage("set_tempo", tempo=TEMPO_US, time=0))
    end_tick = int(round(end_s * TICKS_PER_SECOND))
    meta.append(mido.MetaMessage("end_of_track", time=end_tick))
    mid.tracks.append(meta)
    for chdef in channels:
        ch = chdef["channel"]
        evs: List[Tuple[int, int, mido.Message]] = []  # (tick, order, msg)
        for t, kind, a, b in chdef.get("controls", []):
            tick = int(round(t * TICKS_PER_SECOND))
            if kind == "program":
                evs.append((tick, 1, mido.Message("program_change", channel=ch, program=int(a))))
            else:
                evs.append((tick, 0, mido.Message("control_change", channel=ch, control=int(a), value=int(b))))
        for on, off, pitch, vel in chdef.get("notes", []):
            t_on = int(round(on * TICKS_PER_SECOND))
            t_off = int(round(off * TICKS_PER_SECOND))
            if t_off <= t_on:
                continue
            evs.append((t_on, 3, mido.Message("note_on", channel=ch, note=int(pitch), velocity=int(vel))))
            evs.append((t_off, 2, mido.Message("note_off", channel=ch, note=int(pitch), velocity=0)))
        evs.sort(key=lambda e: (e[0], e[1]))
        tr = mido.MidiTrack()
        tr.append(mido.MetaMessage("track_name", name="ch%d" % ch, time=0))
        last = 0
        for tick, _, msg in evs:
            msg.time = tick - last
            last = tick
            tr.append(msg)
        tr.append(mido.MetaMessage("end_of_track", time=max(0, end_tick - last)))
        mid.tracks.append(tr)
    mid.save(path)
