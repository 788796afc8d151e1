// Batch (batch.h): job collection, shards, --skip-existing, failures, stop flag, progress.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>

#include "test_util.h"
#include "tunescribe/batch.h"
#include "tunescribe/errors.h"

namespace fs = std::filesystem;
using namespace tunescribe;

namespace {

void touch(const std::string& path, const std::string& text = "x") {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

bool is_mid(const std::string& p) { return fs::path(p).extension() == ".mid"; }

std::vector<std::string> names(const std::vector<BatchJob>& jobs) {
  std::vector<std::string> out;
  for (const auto& j : jobs) out.push_back(fs::path(j.input).filename().string());
  return out;
}

// A folder in/000.mid ... in/(n-1).mid.
std::string mid_folder(const std::string& dir, int n) {
  for (int i = 0; i < n; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "/in/%03d.mid", i);
    touch(dir + name);
  }
  return dir + "/in";
}

// A job that writes its input's name into every output.
JobResult echo(const BatchJob& job, int) {
  JobResult r;
  r.outputs.assign(job.outputs.size(), job.input);
  r.details = {{"notes", 1}};
  r.media_seconds = 2.0;
  return r;
}

}  // namespace

TEST(Batch, CollectsSortedSupportedFilesAndNamesTheOutputs) {
  const std::string dir = test::temp_dir("batch_collect");
  touch(dir + "/in/b.mid");
  touch(dir + "/in/a.mid");
  touch(dir + "/in/notes.txt");
  touch(dir + "/in/sub/c.mid");
  BatchConfig cfg;
  cfg.out_dir = dir + "/out";
  cfg.output_exts = {"json", "abc"};
  Batch flat(cfg);
  // A folder, a file listed again and a missing file (reported when processed).
  flat.collect({dir + "/in", dir + "/in/./a.mid", dir + "/missing.mid"}, is_mid, "MIDI files");
  EXPECT_EQ(names(flat.jobs()), (std::vector<std::string>{"a.mid", "b.mid", "missing.mid"}));
  EXPECT_TRUE(fs::is_directory(dir + "/out"));
  ASSERT_EQ(flat.jobs()[0].outputs.size(), 2u);
  EXPECT_EQ(flat.jobs()[0].outputs[0], dir + "/out/a.json");
  EXPECT_EQ(flat.jobs()[0].outputs[1], dir + "/out/a.abc");
  for (size_t i = 0; i < flat.jobs().size(); ++i) EXPECT_EQ(flat.jobs()[i].index, i);

  cfg.recursive = true;
  cfg.out_dir.clear();  // beside each input
  Batch deep(cfg);
  deep.collect({dir + "/in"}, is_mid, "MIDI files");
  EXPECT_EQ(names(deep.jobs()), (std::vector<std::string>{"a.mid", "b.mid", "c.mid"}));
  EXPECT_EQ(deep.jobs()[2].outputs[0], dir + "/in/sub/c.json");

  // Nothing to do is a configuration error.
  touch(dir + "/empty/readme.txt");
  Batch none(BatchConfig{});
  EXPECT_THROW(none.collect({dir + "/empty"}, is_mid, "MIDI files"), ConfigError);
  fs::remove_all(dir);
}

TEST(Batch, ShardsPartitionTheJobsExactly) {
  const std::string dir = test::temp_dir("batch_shard");
  const std::string in = mid_folder(dir, 10);
  std::multiset<std::string> all;
  for (int k = 1; k <= 3; ++k) {
    BatchConfig cfg;
    cfg.shard = std::to_string(k) + "/3";
    Batch b(cfg);
    b.collect({in}, is_mid, "MIDI files");
    std::vector<std::string> want;
    for (int i = k - 1; i < 10; i += 3) {
      char name[16];
      std::snprintf(name, sizeof name, "%03d.mid", i);
      want.push_back(name);
    }
    EXPECT_EQ(names(b.jobs()), want) << "shard " << k;
    for (size_t i = 0; i < b.jobs().size(); ++i) EXPECT_EQ(b.jobs()[i].index, i);
    for (const auto& n : names(b.jobs())) all.insert(n);
  }
  EXPECT_EQ(all.size(), 10u);
  EXPECT_EQ(std::set<std::string>(all.begin(), all.end()).size(), 10u);
  // The shard does not depend on the order of the inputs.
  std::vector<std::string> reversed;
  for (int i = 9; i >= 0; --i) reversed.push_back(in + "/00" + std::to_string(i) + ".mid");
  BatchConfig cfg;
  cfg.shard = "2/3";
  Batch b(cfg);
  b.collect(reversed, is_mid, "MIDI files");
  auto got = names(b.jobs());
  EXPECT_EQ(std::set<std::string>(got.begin(), got.end()), (std::set<std::string>{"001.mid", "004.mid", "007.mid"}));
  for (const char* bad : {"0/3", "4/3", "1/0", "a/b", "3", "/3", "1/", "-1/3", "1/3/4"}) {
    BatchConfig c;
    c.shard = bad;
    EXPECT_THROW(c.validate(), ConfigError) << bad;
  }
  fs::remove_all(dir);
}

TEST(Batch, ConfigValuesAreChecked) {
  BatchConfig cfg;
  cfg.force = cfg.skip_existing = true;
  EXPECT_THROW(Batch{cfg}, ConfigError);
  cfg = BatchConfig{};
  cfg.jobs = 0;
  EXPECT_THROW(cfg.validate(), ConfigError);
  cfg.jobs = 257;
  EXPECT_THROW(cfg.validate(), ConfigError);
  cfg.jobs = 256;
  EXPECT_NO_THROW(cfg.validate());
}

TEST(Batch, WritesOutputsSkipsExistingAndRefusesToOverwrite) {
  const std::string dir = test::temp_dir("batch_skip");
  const std::string in = mid_folder(dir, 3);
  BatchConfig cfg;
  cfg.out_dir = dir + "/out";
  cfg.output_exts = {"json", "abc"};
  {
    Batch b(cfg);
    b.collect({in}, is_mid, "MIDI files");
    const BatchSummary s = b.run(echo);
    EXPECT_EQ(s.ok, 3u);
    EXPECT_DOUBLE_EQ(s.media_seconds, 6.0);
    ASSERT_EQ(s.succeeded.size(), 3u);
    EXPECT_EQ(s.succeeded[0]["notes"], 1);
    EXPECT_EQ(s.succeeded[0]["outputs"].size(), 2u);
  }
  std::ifstream f(dir + "/out/001.abc");
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, in + "/001.mid");
  fs::remove(dir + "/out/002.abc");  // 002 is incomplete

  cfg.skip_existing = true;
  Batch resume(cfg);
  resume.collect({in}, is_mid, "MIDI files");
  int ran = 0;
  const BatchSummary s = resume.run([&](const BatchJob& job, int w) {
    ++ran;
    return echo(job, w);
  });
  EXPECT_EQ(ran, 1);
  EXPECT_EQ(s.skipped, 2u);
  EXPECT_EQ(s.ok, 1u);
  EXPECT_EQ(s.skipped_inputs, (std::vector<std::string>{in + "/000.mid", in + "/001.mid"}));

  cfg.skip_existing = false;
  Batch again(cfg);
  again.collect({in}, is_mid, "MIDI files");
  const BatchSummary refused = again.run(echo);
  EXPECT_EQ(refused.ok, 0u);
  ASSERT_EQ(refused.failures.size(), 3u);
  EXPECT_NE(refused.failures[0].second.find("exists"), std::string::npos) << refused.failures[0].second;
  fs::remove_all(dir);
}

TEST(Batch, AFailingJobDoesNotStopTheOthersAndIsInTheSummary) {
  const std::string dir = test::temp_dir("batch_fail");
  const std::string in = mid_folder(dir, 6);
  for (int jobs : {1, 3}) {
    BatchConfig cfg;
    cfg.jobs = jobs;
    Batch b(cfg);
    b.collect({in}, is_mid, "MIDI files");
    EXPECT_EQ(b.workers(), jobs);
    const BatchSummary s = b.run([](const BatchJob& job, int w) -> JobResult {
      if (job.index == 1) throw InputError(job.input + ": broken");
      if (job.index == 4) throw std::runtime_error("out of luck");
      return echo(job, w);
    });
    EXPECT_EQ(s.ok, 4u) << jobs;
    EXPECT_EQ(s.finished, 6u);
    EXPECT_TRUE(s.not_done.empty());
    ASSERT_EQ(s.failures.size(), 2u);
    std::set<std::string> failed = {s.failures[0].first, s.failures[1].first};
    EXPECT_EQ(failed, (std::set<std::string>{in + "/001.mid", in + "/004.mid"}));
    const auto j = s.to_json();
    EXPECT_EQ(j["failed"], 2);
    EXPECT_EQ(j["ok"], 4);
    EXPECT_TRUE(j["interrupted"].is_null());
    EXPECT_TRUE(j["fatal_error"].is_null());
    bool named = false;
    for (const auto& f : j["failures"]) named = named || f["error"] == in + "/004.mid: out of luck";
    EXPECT_TRUE(named) << j.dump(1);
    EXPECT_EQ(s.line(), "4 done, 0 skipped, 2 failed");
  }
  fs::remove_all(dir);
}

TEST(Batch, ProgressIsReportedOncePerJob) {
  const std::string dir = test::temp_dir("batch_progress");
  const std::string in = mid_folder(dir, 7);
  BatchConfig cfg;
  cfg.jobs = 3;
  Batch b(cfg);
  b.collect({in}, is_mid, "MIDI files");
  std::vector<size_t> finished, seen_jobs;
  const BatchSummary s = b.run(
      [](const BatchJob& job, int w) -> JobResult {
        if (job.index == 5) throw InputError("bad");
        return echo(job, w);
      },
      [&](const JobRecord& rec, const BatchProgress& p) {  // one call at a time: no lock needed
        finished.push_back(p.finished);
        seen_jobs.push_back(rec.job->index);
        EXPECT_EQ(p.total, 7u);
        EXPECT_EQ(rec.json["input"], rec.job->input);
        EXPECT_EQ(rec.json["status"], rec.status == JobStatus::Failed ? "failed" : "ok");
      });
  EXPECT_EQ(finished, (std::vector<size_t>{1, 2, 3, 4, 5, 6, 7}));
  std::sort(seen_jobs.begin(), seen_jobs.end());
  EXPECT_EQ(seen_jobs, (std::vector<size_t>{0, 1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(s.ok, 6u);
  fs::remove_all(dir);
}

TEST(Batch, StopFlagAndFatalErrorsLeaveTheRestNotDone) {
  const std::string dir = test::temp_dir("batch_stop");
  const std::string in = mid_folder(dir, 5);
  std::atomic<int> stop{0};
  Batch b(BatchConfig{});
  b.collect({in}, is_mid, "MIDI files");
  const BatchSummary s = b.run(
      [&](const BatchJob& job, int w) {
        if (job.index == 1) stop.store(2);                      // as a SIGINT handler would
        if (job.index == 1 && b.stop_requested()) throw BatchStopped{};  // abandon this input
        return echo(job, w);
      },
      {}, &stop);
  EXPECT_EQ(s.ok, 1u);
  EXPECT_EQ(s.stop_signal, 2);
  EXPECT_EQ(s.stop_name(), "SIGINT");
  EXPECT_EQ(s.not_done.size(), 4u);
  EXPECT_EQ(s.to_json()["interrupted"], "SIGINT");

  Batch m(BatchConfig{});
  m.collect({in}, is_mid, "MIDI files");
  const BatchSummary f = m.run([](const BatchJob& job, int w) -> JobResult {
    if (job.index == 2) throw ModelError("model: gone");
    return echo(job, w);
  });
  EXPECT_EQ(f.ok, 2u);
  EXPECT_EQ(f.fatal_error, "model: gone");
  EXPECT_EQ(f.not_done.size(), 3u);
  EXPECT_THROW(std::rethrow_exception(f.fatal), ModelError);

  // A ConfigError fails its input, unless config errors stop the batch.
  for (bool stops : {false, true}) {
    BatchConfig cfg;
    cfg.config_error_stops = stops;
    Batch c(cfg);
    c.collect({in}, is_mid, "MIDI files");
    const BatchSummary r = c.run([](const BatchJob& job, int w) -> JobResult {
      if (job.index == 0) throw ConfigError("bad value");
      return echo(job, w);
    });
    EXPECT_EQ(r.ok, stops ? 0u : 4u);
    EXPECT_EQ(static_cast<bool>(r.fatal), stops);
  }
  fs::remove_all(dir);
}
