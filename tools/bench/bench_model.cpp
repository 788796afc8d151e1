// bench_model — encoder and decoder speed of the libtorch MT3 network.
//
//   build/bin/bench_model [--threads 2] [--model tiny|20m|DIR] [--steps 256]
//                         [--batches 1,8] [--kernels auto,matmul,bmm,mulsum,loop]
//                         [--frames 256] [--repeat 2] [--blas-threads N] [--intra-op] [--info] [--int8]
//
// --threads N: N batch-split workers with 1 libtorch thread each (the library's
// default); with --intra-op: libtorch/OpenBLAS thread pools of N, one worker.
//
// "20m" is a random-weights model of the default's size (~22.6M parameters:
// d_model 384, 6 heads x 64, mlp 768, 6 encoder + 6 decoder layers, 1536
// vocabulary rows, 512 mel bins). Random weights never emit EOS, so every
// decode runs exactly --steps tokens per item (an upper bound on real cost).
// Prints encoder ms per segment, decoder tokens/s per batch size and attention
// kernel, and where decoding time goes (embed, self-attention incl. cache
// writes, cross-attention, MLP, logits+norm, cross K/V projection).
#include <chrono>
#include <ctime>
#include <dlfcn.h>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "tunescribe/model.h"

using namespace tunescribe;

namespace {

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string x;
  while (std::getline(ss, x, ',')) out.push_back(x);
  return out;
}

double cpu_s() { return double(std::clock()) / CLOCKS_PER_SEC; }

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::unique_ptr<Model> random_model(const ModelConfig& c, const std::string& name) {
  nlohmann::json cfg = {{"model_type", "tunescribe-mt3"}, {"format_version", 1}, {"name", name},
                        {"model", c.to_json()}};
  return Model::from_tensors(cfg, random_model_tensors(c, 42), name);
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 2, steps = 256, frames = 256, repeat = 2, blas_threads = -1;
  bool intra_op = false;
  std::string model_arg = "20m", batches_arg = "1,8", kernels_arg = "auto,matmul,bmm,mulsum,loop";
  bool info = false, int8 = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "bench_model: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--threads") threads = std::atoi(next().c_str());
    else if (a == "--steps") steps = std::atoi(next().c_str());
    else if (a == "--frames") frames = std::atoi(next().c_str());
    else if (a == "--repeat") repeat = std::atoi(next().c_str());
    else if (a == "--model") model_arg = next();
    else if (a == "--batches") batches_arg = next();
    else if (a == "--kernels") kernels_arg = next();
    else if (a == "--blas-threads") blas_threads = std::atoi(next().c_str());
    else if (a == "--intra-op") intra_op = true;
    else if (a == "--info") info = true;
    else if (a == "--int8") int8 = true;
    else {
      std::fprintf(stderr, "usage: bench_model [--threads N] [--model tiny|20m|DIR] [--steps N] [--batches 1,8] "
                           "[--kernels auto,...] [--frames N] [--repeat N] [--blas-threads N] [--intra-op] [--info]\n");
      return 2;
    }
  }
  set_model_threads(threads, intra_op);
  const int workers = model_workers();
  if (blas_threads > 0) {  // override OpenBLAS's own pool (set_model_threads sizes it to --threads)
    using SetThreads = void (*)(int);
    if (auto f = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) f(blas_threads);
    else std::fprintf(stderr, "bench_model: openblas_set_num_threads not found\n");
  }
  std::unique_ptr<Model> model;
  if (model_arg == "20m") {
    ModelConfig c;
    c.d_model = 384;
    c.num_heads = 6;
    c.head_dim = 64;
    c.mlp_dim = 768;
    c.num_encoder_layers = 6;
    c.num_decoder_layers = 6;
    model = random_model(c, "random-20m");
  } else if (model_arg == "tiny") {
    model = Model::load(std::string(TUNESCRIBE_SOURCE_DIR) + "/models/tiny");
  } else {
    model = Model::load(model_arg);
  }
  if (int8) std::printf("int8: %d matrices quantized\n", model->quantize_int8());
  const ModelConfig& c = model->config();
  std::printf("model %s: %.2fM parameters (d_model %d, %dx%d heads, mlp %d, %d+%d layers, vocab %d), threads %d, "
              "blas threads %s, workers %d%s\n",
              model->name().c_str(), c.num_parameters() / 1e6, c.d_model, c.num_heads, c.head_dim, c.mlp_dim,
              c.num_encoder_layers, c.num_decoder_layers, c.vocab_size, threads,
              blas_threads > 0 ? std::to_string(blas_threads).c_str() : "default", workers, intra_op ? " (intra-op)" : "");
  if (info) std::printf("%s\n", model_backend_info().c_str());

  std::mt19937 rng(7);
  std::normal_distribution<float> nd(-4.0f, 2.0f);
  for (const std::string& kernel : split(kernels_arg)) {
    set_attention_kernel(kernel);
    for (const std::string& bs : split(batches_arg)) {
      const int B = std::atoi(bs.c_str());
      std::vector<float> mel(size_t(B) * frames * c.input_depth);
      for (float& x : mel) x = nd(rng);
      // warm-up
      GreedyOptions gopts;
      EncoderOutput enc = model->encode(mel.data(), B, frames);
      model->greedy_decode(enc, 8, gopts);
      double enc_s = 1e30, dec_s = 1e30, dec_cpu_s = 0, enc_cpu_s = 1e30;
      DecodeProfile best;
      for (int r = 0; r < repeat; ++r) {
        double t0 = now_s(), c0 = cpu_s();
        enc = model->encode(mel.data(), B, frames);
        enc_s = std::min(enc_s, now_s() - t0);
        enc_cpu_s = std::min(enc_cpu_s, cpu_s() - c0);
        DecodeProfile prof;
        model->set_profile(&prof);
        t0 = now_s();
        c0 = cpu_s();
        auto out = model->greedy_decode(enc, steps, gopts);
        double d = now_s() - t0;
        model->set_profile(nullptr);
        if (d < dec_s) {
          dec_s = d;
          dec_cpu_s = cpu_s() - c0;
          best = prof;
        }
      }
      const double tokens = double(B) * steps;
      const double seg_s = frames * 128.0 / 16000.0;
      std::printf("kernel %-6s batch %2d: encoder %7.1f ms/segment (cpu %7.1f) | decoder %8.1f tokens/s "
                  "(per cpu-second %8.1f; %d steps) | model RTF at %d tokens/segment: %.3f\n",
                  kernel.c_str(), B, 1e3 * enc_s / B, 1e3 * enc_cpu_s / B, tokens / dec_s, tokens / dec_cpu_s, steps,
                  steps, (enc_s / B + dec_s / B) / seg_s);
      if (best.total_decode_s <= 0) continue;  // no profile with several workers
      const double tot = best.total_decode_s;
      std::printf("    decode split: self-attn %4.1f%%  cross-attn %4.1f%%  mlp %4.1f%%  logits %4.1f%%  embed %4.1f%%  "
                  "cross-K/V %4.1f%%  other %4.1f%%\n",
                  100 * best.self_attn_s / tot, 100 * best.cross_attn_s / tot, 100 * best.mlp_s / tot,
                  100 * best.logits_s / tot, 100 * best.embed_s / tot, 100 * best.cross_kv_s / tot,
                  100 * (tot - best.self_attn_s - best.cross_attn_s - best.mlp_s - best.logits_s - best.embed_s -
                         best.cross_kv_s) / tot);
      std::fflush(stdout);
    }
  }
  return 0;
}
