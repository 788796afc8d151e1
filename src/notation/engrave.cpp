// engrave.cpp — ABC → SVG pages with abcm2ps (see engrave.h).
#include "tunescribe/engrave.h"

#include <signal.h>
#include <spawn.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "tunescribe/errors.h"
#include "tunescribe/fileutil.h"
#include "tunescribe/log.h"
#include "tunescribe/xml_text.h"

extern char** environ;

namespace fs = std::filesystem;

namespace tunescribe {

void EngraveConfig::validate() const {
  if (!(timeout_s >= 1.0 && timeout_s <= 3600.0))
    throw ConfigError("engrave: timeout_s " + std::to_string(timeout_s) + " is not within [1, 3600]");
}

namespace {

bool is_executable_file(const std::string& p) {
  struct stat st {};
  return !p.empty() && ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(p.c_str(), X_OK) == 0;
}

// Removes a folder and what is in it when the scope ends.
struct TempDir {
  std::string path;
  TempDir() {
    std::error_code ec;
    std::string tmpl = (fs::temp_directory_path(ec) / "tunescribe-engrave-XXXXXX").string();
    if (ec) tmpl = "/tmp/tunescribe-engrave-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (!::mkdtemp(buf.data()))
      throw OutputError("engrave: cannot create a temporary folder: " + std::string(std::strerror(errno)));
    path = buf.data();
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

// Runs argv with stdout and stderr into log_path; the exit status, or -1 when killed at the time limit.
int run_program(const std::vector<std::string>& args, const std::string& log_path, double timeout_s) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int rc = ::posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) throw OutputError("engrave: cannot run " + args[0] + ": " + std::strerror(rc));
  const auto t0 = std::chrono::steady_clock::now();
  for (;;) {
    int status = 0;
    const pid_t w = ::waitpid(pid, &status, WNOHANG);
    if (w == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    if (w < 0 && errno != EINTR) throw OutputError("engrave: waiting for " + args[0] + ": " + std::strerror(errno));
    if (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() > timeout_s) {
      ::kill(pid, SIGKILL);
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

std::string last_line(const std::string& text) {
  std::istringstream is(text);
  std::string line, last;
  while (std::getline(is, line))
    if (line.find_first_not_of(" \t\r") != std::string::npos) last = line;
  return last;
}

// Reproducible page: our title instead of the temporary path, no date or command line comments.
std::string clean_page(const std::string& svg, const std::string& title, size_t page) {
  std::string out;
  out.reserve(svg.size());
  std::istringstream is(svg);
  std::string line;
  bool titled = false;
  while (std::getline(is, line)) {
    if (line.rfind("<!-- CreationDate:", 0) == 0 || line.rfind("<!-- CommandLine:", 0) == 0) continue;
    const size_t a = line.find("<title>");
    if (!titled && a != std::string::npos) {
      const size_t b = line.find("</title>", a);
      if (b != std::string::npos) {
        line = line.substr(0, a) + "<title>" + xml_escape(title) + " page " + std::to_string(page) + "</title>" +
               line.substr(b + 8);
        titled = true;
      }
    }
    out += line;
    out += '\n';
  }
  return out;
}

}  // namespace

std::string find_abcm2ps(const EngraveConfig& cfg) {
  if (!cfg.program.empty()) return is_executable_file(cfg.program) ? cfg.program : "";
  if (const char* env = std::getenv("TUNESCRIBE_ABCM2PS"); env && *env) return is_executable_file(env) ? env : "";
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path ? path : "/usr/local/bin:/usr/bin:/bin");
  std::string d;
  while (std::getline(dirs, d, ':')) {
    if (d.empty()) continue;
    const std::string p = d + "/abcm2ps";
    if (is_executable_file(p)) return p;
  }
  return "";
}

std::string abcm2ps_missing_message(const std::string& component) {
  return component + ": --format svg needs abcm2ps, which is not installed (Debian package abcm2ps: apt-get install abcm2ps)";
}

std::vector<std::string> engrave_abc_svg(const std::string& abc_text, const std::string& title,
                                         const EngraveConfig& cfg) {
  cfg.validate();
  const std::string prog = find_abcm2ps(cfg);
  if (prog.empty()) throw NotAvailableError(abcm2ps_missing_message("engrave"));
  TempDir dir;
  const std::string abc_path = dir.path + "/tune.abc", log_path = dir.path + "/abcm2ps.log";
  {
    std::ofstream f(abc_path, std::ios::binary);
    f << abc_text;
    if (!f) throw OutputError("engrave: cannot write " + abc_path);
  }
  const int rc = run_program({prog, "-v", "-O", dir.path + "/page", abc_path}, log_path, cfg.timeout_s);
  std::string log;
  try {
    log = read_file_text(log_path, 1 << 20);
  } catch (const Error&) {
  }
  if (rc < 0) throw OutputError("engrave: abcm2ps did not finish within " + std::to_string(int(cfg.timeout_s)) + " s");
  auto svg_files = [&](const std::string& prefix) {
    std::vector<std::string> names;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir.path, ec)) {
      const std::string n = e.path().filename().string();
      if (n.rfind(prefix, 0) == 0 && n.size() > prefix.size() + 4 && n.compare(n.size() - 4, 4, ".svg") == 0)
        names.push_back(dir.path + "/" + n);
    }
    std::sort(names.begin(), names.end());
    return names;
  };
  std::vector<std::string> names = svg_files("page");
  if (names.empty())
    throw OutputError("engrave: abcm2ps wrote no page (exit status " + std::to_string(rc) + ": " + last_line(log) + ")");
  if (rc != 0 || log.find("rror") != std::string::npos) log_debug("engrave", "abcm2ps: " + last_line(log));
  // A tune that fits on one page: the same engraving with -g (one file per tune), which is cropped
  // to the music instead of a whole page of blank paper.
  if (names.size() == 1 && run_program({prog, "-g", "-O", dir.path + "/tune", abc_path}, log_path, cfg.timeout_s) >= 0) {
    const auto cropped = svg_files("tune");
    if (cropped.size() == 1) names = cropped;
  }
  std::vector<std::string> pages;
  for (size_t i = 0; i < names.size(); ++i) pages.push_back(clean_page(read_file_text(names[i]), title, i + 1));
  return pages;
}

std::string engraved_page_path(const std::string& first, size_t page) {
  if (page <= 1) return first;
  const fs::path p(first);
  const std::string ext = p.extension().string();
  return (p.parent_path() / (p.stem().string() + "-" + std::to_string(page) + ext)).string();
}

}  // namespace tunescribe
