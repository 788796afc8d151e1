#include "tunescribe/batch.h"

#include <algorithm>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>

#include "tunescribe/errors.h"
#include "tunescribe/fileutil.h"
#include "tunescribe/log.h"

namespace fs = std::filesystem;

namespace tunescribe {

static_assert(std::atomic<int>::is_always_lock_free, "the stop flag is set from a signal handler");

std::pair<int, int> parse_shard(const std::string& s, const std::string& component) {
  auto bad = [&]() {
    return ConfigError(component + ": --shard '" + s + "': expected K/N with integers 1 <= K <= N (e.g. 3/10)");
  };
  auto slash = s.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 >= s.size()) throw bad();
  auto digits = [](const std::string& t) {
    return !t.empty() && t.size() <= 9 && std::all_of(t.begin(), t.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  std::string ks = s.substr(0, slash), ns = s.substr(slash + 1);
  if (!digits(ks) || !digits(ns)) throw bad();
  int k = std::stoi(ks), n = std::stoi(ns);
  if (n < 1 || k < 1 || k > n) throw bad();
  return {k, n};
}

void BatchConfig::validate() const {
  if (force && skip_existing) throw ConfigError(component + ": --force and --skip-existing exclude each other");
  if (!shard.empty()) parse_shard(shard, component);
  if (jobs < 1 || jobs > 256)
    throw ConfigError(component + ": --jobs " + std::to_string(jobs) + " is not within [1, 256]");
  if (!out_file.empty() && (!out_dir.empty() || output_exts.size() != 1))
    throw ConfigError(component + ": -o " + out_file + ": one output file takes exactly one format and no folder");
}

std::vector<std::string> list_input_files(const std::string& dir, bool recursive,
                                          const std::function<bool(const std::string&)>& accept,
                                          std::error_code& ec) {
  std::vector<fs::path> found;
  auto take = [&](const fs::directory_entry& e) {
    std::error_code e2;
    if (e.is_regular_file(e2) && accept(e.path().string())) found.push_back(e.path());
  };
  if (recursive) {
    fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec), end;
    for (; !ec && it != end; it.increment(ec)) {
      if (it.depth() > 64) {
        it.disable_recursion_pending();
        continue;
      }
      take(*it);
    }
  } else {
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) take(*it);
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> out;
  out.reserve(found.size());
  for (const auto& p : found) out.push_back(p.string());
  return out;
}

namespace {

// Shard K/N: rank the jobs by normalised path (independent of argument order),
// keep those whose rank % N == K - 1, in their original order.
std::vector<BatchJob> select_shard(const std::vector<BatchJob>& jobs, int k, int n) {
  std::vector<size_t> order(jobs.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::vector<std::string> keys;
  keys.reserve(jobs.size());
  for (const auto& j : jobs) keys.push_back(fs::path(j.input).lexically_normal().string());
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return keys[a] < keys[b]; });
  std::vector<char> keep(jobs.size(), 0);
  for (size_t r = 0; r < order.size(); ++r)
    if (static_cast<int>(r % static_cast<size_t>(n)) == k - 1) keep[order[r]] = 1;
  std::vector<BatchJob> out;
  for (size_t i = 0; i < jobs.size(); ++i)
    if (keep[i]) {
      out.push_back(jobs[i]);
      out.back().index = out.size() - 1;
    }
  return out;
}

bool all_exist(const std::vector<std::string>& paths) {
  return std::all_of(paths.begin(), paths.end(), [](const std::string& p) { return fs::exists(p); });
}

}  // namespace

// ---------------------------------------------------------------------------- summary

std::string BatchSummary::stop_name() const {
  return stop_signal == SIGINT ? "SIGINT" : stop_signal == SIGTERM ? "SIGTERM" : "";
}

nlohmann::json BatchSummary::counts_json() const {
  return {{"ok", ok},         {"skipped", skipped},          {"failed", failures.size()}, {"not_done", not_done.size()},
          {"inputs", inputs}, {"seconds", seconds}, {"audio_seconds", media_seconds}};
}

nlohmann::json BatchSummary::failures_json() const {
  nlohmann::json fl = nlohmann::json::array();
  for (const auto& f : failures) fl.push_back({{"input", f.first}, {"error", f.second}});
  return fl;
}

nlohmann::json BatchSummary::to_json() const {
  nlohmann::json s = counts_json();
  s["interrupted"] = stop_signal != 0 ? nlohmann::json(stop_name()) : nlohmann::json(nullptr);
  s["fatal_error"] = fatal ? nlohmann::json(fatal_error) : nlohmann::json(nullptr);
  s["shard"] = shard.empty() ? nlohmann::json(nullptr) : nlohmann::json(shard);
  s["jobs"] = workers;
  s["succeeded"] = succeeded;
  s["skipped_inputs"] = skipped_inputs;
  s["failures"] = failures_json();
  s["not_done_inputs"] = not_done;
  return s;
}

std::string BatchSummary::line() const {
  return std::to_string(ok) + " done, " + std::to_string(skipped) + " skipped, " + std::to_string(failures.size()) +
         " failed";
}

// ---------------------------------------------------------------------------- jobs

Batch::Batch(BatchConfig cfg) : cfg_(std::move(cfg)) { cfg_.validate(); }

void Batch::add_job(const std::string& input) {
  BatchJob job;
  job.input = input;
  job.index = jobs_.size();
  const std::string dir = cfg_.out_dir.empty() ? fs::path(input).parent_path().string() : cfg_.out_dir;
  if (!cfg_.out_file.empty()) job.outputs.push_back(cfg_.out_file);
  else
    for (const auto& ext : cfg_.output_exts)
    job.outputs.push_back(((dir.empty() ? fs::path(".") : fs::path(dir)) / (path_stem(input) + "." + ext)).string());
  jobs_.push_back(std::move(job));
}

void Batch::add(const std::string& input) { add_job(input); }

void Batch::collect(const std::vector<std::string>& inputs, const std::function<bool(const std::string&)>& accept,
                    const std::string& kinds) {
  const std::string folder = cfg_.out_file.empty() ? cfg_.out_dir : fs::path(cfg_.out_file).parent_path().string();
  if (!folder.empty()) {
    std::error_code ec;
    fs::create_directories(folder, ec);
    if (ec) throw OutputError(folder + ": cannot create output folder: " + ec.message());
  }
  std::set<std::string> seen;
  auto add_new = [&](const fs::path& p) {
    if (seen.insert(p.lexically_normal().string()).second) add_job(p.string());
  };
  for (const auto& in : inputs) {
    std::error_code ec;
    if (!fs::is_directory(in, ec)) {
      add_new(in);  // missing files are reported when processed
      continue;
    }
    const auto found = list_input_files(in, cfg_.recursive, accept, ec);
    if (ec) collect_failures_.push_back({in, "cannot list folder: " + ec.message()});
    if (found.empty())
      log_warn(cfg_.component,
               in + ": no " + kinds + " found" + (cfg_.recursive ? "" : " (use --recursive for subfolders)"));
    for (const auto& f : found) add_new(f);
  }
  if (!cfg_.shard.empty()) {
    const auto kn = parse_shard(cfg_.shard, cfg_.component);
    const size_t all = jobs_.size();
    jobs_ = select_shard(jobs_, kn.first, kn.second);
    log_info(cfg_.component, "shard " + cfg_.shard + ": " + std::to_string(jobs_.size()) + " of " +
                                 std::to_string(all) + " inputs");
  }
  if (jobs_.empty() && collect_failures_.empty() && cfg_.shard.empty())
    throw ConfigError(cfg_.component + ": no inputs to process");
  if (!cfg_.out_file.empty() && jobs_.size() + collect_failures_.size() > 1)
    throw ConfigError(cfg_.component + ": -o " + cfg_.out_file + " is one file, but there are " +
                      std::to_string(jobs_.size() + collect_failures_.size()) + " inputs: give a folder");
}

int Batch::workers() const { return std::min<int>(cfg_.jobs, std::max<size_t>(size_t(1), jobs_.size())); }

bool Batch::stop_requested() const { return stop_ != nullptr && stop_->load() != 0; }

// ---------------------------------------------------------------------------- run

struct Batch::RunState {
  std::mutex mu;
  std::atomic<size_t> next{0};
  size_t finished = 0;
  BatchSummary summary;
  std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();

  double elapsed_s() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  // The first error that must stop the whole run wins; the others stop their workers quietly.
  void record_fatal(const char* what) {
    std::lock_guard<std::mutex> lk(mu);
    if (!summary.fatal) {
      summary.fatal_error = what;
      summary.fatal = std::current_exception();
    }
  }
  bool stopped_by_fatal() {
    std::lock_guard<std::mutex> lk(mu);
    return static_cast<bool>(summary.fatal);
  }
  // Counts a finished job and reports it; the caller holds `mu`.
  void finish(const JobRecord& rec, size_t total, const ProgressCallback& progress) {
    ++finished;
    if (progress) progress(rec, BatchProgress{finished, total, elapsed_s(), summary.media_seconds});
  }
};

void Batch::work(RunState& st, const JobFunction& fn, const ProgressCallback& progress, int worker) {
  for (;;) {
    if (stop_requested() || st.stopped_by_fatal()) return;
    const size_t i = st.next.fetch_add(1);
    if (i >= jobs_.size()) return;
    const BatchJob& job = jobs_[i];
    JobRecord rec;
    rec.job = &job;
    rec.json = {{"input", job.input}};
    try {
      const bool have_all = !job.outputs.empty() && all_exist(job.outputs);
      if (cfg_.skip_existing && have_all) {
        rec.status = JobStatus::Skipped;
        rec.json["status"] = "skipped";
        std::lock_guard<std::mutex> lk(st.mu);
        ++st.summary.skipped;
        st.summary.skipped_inputs.push_back(job.input);
        st.finish(rec, jobs_.size(), progress);
        continue;
      }
      if (!cfg_.force && !cfg_.skip_existing)
        for (const auto& p : job.outputs)
          if (fs::exists(p)) throw OutputError(p + ": exists (use --force to overwrite or --skip-existing)");
      JobResult r = fn(job, worker);
      rec.json.update(r.record_extra);
      if (!cfg_.force && !cfg_.skip_existing)
        for (const auto& x : r.extra_outputs)
          if (fs::exists(x.first)) throw OutputError(x.first + ": exists (use --force to overwrite or --skip-existing)");
      for (size_t k = 0; k < job.outputs.size(); ++k) write_file_atomic(job.outputs[k], r.outputs.at(k));
      for (const auto& x : r.extra_outputs) write_file_atomic(x.first, x.second);
      if (cfg_.force)
        for (const auto& p : r.stale_outputs) {
          std::error_code ec;
          if (fs::remove(p, ec)) log_info("batch", "removed " + p + " (a page of an earlier run)");
        }
      rec.json["status"] = "ok";
      rec.json["outputs"] = job.outputs;
      for (const auto& x : r.extra_outputs) rec.json["outputs"].push_back(x.first);
      rec.json.update(r.details);
      nlohmann::json item = {{"input", job.input}, {"outputs", rec.json["outputs"]}};
      item.update(r.details);
      std::lock_guard<std::mutex> lk(st.mu);
      ++st.summary.ok;
      st.summary.media_seconds += r.media_seconds;
      st.summary.succeeded.push_back(std::move(item));
      st.finish(rec, jobs_.size(), progress);
      continue;
    } catch (const BatchStopped&) {
      return;  // abandoned: not done
    } catch (const ModelError& e) {
      st.record_fatal(e.what());
      return;
    } catch (const NotAvailableError& e) {
      st.record_fatal(e.what());
      return;
    } catch (const ConfigError& e) {
      if (cfg_.config_error_stops) {
        st.record_fatal(e.what());
        return;
      }
      rec.error = e.what();
    } catch (const Error& e) {
      rec.error = e.what();
    } catch (const std::exception& e) {  // e.g. bad_alloc on a huge input: fail this input only
      rec.error = job.input + ": " + e.what();
    }
    rec.status = JobStatus::Failed;
    rec.json["status"] = "failed";
    rec.json["error"] = rec.error;
    std::lock_guard<std::mutex> lk(st.mu);
    st.summary.failures.push_back({job.input, rec.error});
    st.finish(rec, jobs_.size(), progress);
  }
}

BatchSummary Batch::run(const JobFunction& job, const ProgressCallback& progress, const std::atomic<int>* stop) {
  stop_ = stop;
  RunState st;
  st.summary.failures = collect_failures_;
  const int n_workers = workers();
  if (n_workers <= 1) {
    work(st, job, progress, 0);
  } else {
    std::vector<std::thread> pool;
    for (int w = 0; w < n_workers; ++w) pool.emplace_back([&, w]() { work(st, job, progress, w); });
    for (auto& t : pool) t.join();
  }
  BatchSummary s = summarise(st);
  stop_ = nullptr;
  return s;
}

BatchSummary Batch::summarise(RunState& st) {
  BatchSummary s = std::move(st.summary);
  s.stop_signal = stop_ != nullptr ? stop_->load() : 0;
  s.seconds = st.elapsed_s();
  s.inputs = jobs_.size();
  s.finished = st.finished;
  s.shard = cfg_.shard;
  s.workers = workers();
  // Inputs neither finished nor failed (interrupted, or stopped by a fatal error).
  std::set<std::string> finished_inputs(s.skipped_inputs.begin(), s.skipped_inputs.end());
  for (const auto& x : s.succeeded) finished_inputs.insert(x["input"].get<std::string>());
  for (const auto& f : s.failures) finished_inputs.insert(f.first);
  for (const auto& j : jobs_)
    if (!finished_inputs.count(j.input)) s.not_done.push_back(j.input);
  return s;
}

}  // namespace tunescribe
