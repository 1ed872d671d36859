// libposenc_torch_ops.so, the library Python loads with torch.ops.load_library: before any of
// posenc's LibTorch code is loaded, it checks that the PyTorch of this Python is the one posenc
// was built against, then loads libposenc_torch_ops_impl.so (the operators) from its own folder.
// Loaded into another PyTorch, the operators would fail to resolve their symbols (a dump of
// mangled names) or, worse, resolve them against an incompatible build and crash; instead
// torch.ops.load_library raises (SystemError, caused by the RuntimeError raised here) with a
// message naming both versions. This file uses only Python's C API and the dynamic loader, so
// it loads into any Python; outside Python (a C++ program's dlopen) it skips the check.
#include <Python.h>
#include <dlfcn.h>

#include <cstdio>
#include <string>

// Weak: defined by the Python interpreter this library is loaded into, null outside one.
#pragma weak Py_IsInitialized
#pragma weak PyGILState_Ensure
#pragma weak PyGILState_Release
#pragma weak PyImport_ImportModule
#pragma weak PyObject_GetAttrString
#pragma weak PyObject_Str
#pragma weak PyUnicode_AsUTF8
#pragma weak PyErr_Clear
#pragma weak PyErr_SetString
#pragma weak PyExc_RuntimeError
#pragma weak Py_DecRef

namespace {

// In the binary as one string, so that a test can make a copy built "for" another version.
constexpr const char kBuiltFor[] = "posenc-ops-built-for-torch=" POSENC_TORCH_VERSION;

std::string built_version() {
  return std::string(kBuiltFor).substr(std::string(kBuiltFor).find('=') + 1);
}

// "2.13.0+cpu" -> "2.13.0": builds of one release (CPU, CUDA) share LibTorch's C++ interface.
std::string release_of(const std::string& version) {
  return version.substr(0, version.find('+'));
}

std::string folder_of_this_library() {
  Dl_info where{};
  if (dladdr(reinterpret_cast<void*>(&folder_of_this_library), &where) == 0 ||
      where.dli_fname == nullptr)
    return ".";
  const std::string path = where.dli_fname;
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

bool inside_python() {
  return Py_IsInitialized != nullptr && Py_IsInitialized() != 0;
}

// torch.__version__ of this Python; called with the GIL held.
std::string running_torch_version() {
  PyObject* torch = PyImport_ImportModule("torch");
  if (torch == nullptr) {
    PyErr_Clear();
    return "";
  }
  PyObject* version = PyObject_GetAttrString(torch, "__version__");
  std::string text;
  if (version != nullptr) {
    PyObject* as_text = PyObject_Str(version);
    if (as_text != nullptr) {
      const char* utf8 = PyUnicode_AsUTF8(as_text);
      text = utf8 != nullptr ? utf8 : "";
      Py_DecRef(as_text);
    }
    Py_DecRef(version);
  }
  PyErr_Clear();
  Py_DecRef(torch);
  return text;
}

std::string check_and_load() {
  if (inside_python()) {
    const std::string running = running_torch_version();
    if (release_of(running) != release_of(built_version()))
      return "posenc's operators (" + folder_of_this_library() +
             "/libposenc_torch_ops.so) were built against PyTorch " + built_version() +
             " but this Python runs PyTorch " + (running.empty() ? "(none found)" : running) +
             ". Use the project's environment (.venv/bin/python), or build posenc against this "
             "PyTorch in a new build folder: "
             "cmake -S . -B build-other -DPOSENC_PYTHON=$(which python)";
  }
  const std::string operators = folder_of_this_library() + "/libposenc_torch_ops_impl.so";
  if (dlopen(operators.c_str(), RTLD_NOW | RTLD_LOCAL) == nullptr) {
    const char* reason = dlerror();
    return "cannot load posenc's operators from " + operators + ": " +
           (reason != nullptr ? reason : "unknown error") +
           " (rebuild with scripts/build.sh; the two libraries stay in one folder)";
  }
  return "";
}

__attribute__((constructor)) void load_posenc_operators() {
  const bool python = inside_python();
  PyGILState_STATE gil{};
  if (python)
    gil = PyGILState_Ensure();
  const std::string error = check_and_load();
  if (!error.empty()) {
    if (python)
      PyErr_SetString(PyExc_RuntimeError, error.c_str());  // raised when dlopen returns
    else
      std::fprintf(stderr, "posenc: %s\n", error.c_str());
  }
  if (python)
    PyGILState_Release(gil);
}

}  // namespace
