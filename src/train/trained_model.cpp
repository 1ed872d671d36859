#include "posenc/train/trained_model.h"

#include "posenc/train/checkpoint.h"

namespace posenc {

TrainedModel load_trained_model(const std::string& checkpoint) {
  TrainedModel trained;
  trained.config = RunConfig::from_json(read_checkpoint_config(checkpoint));
  trained.model = VisionTransformer(trained.config.model);
  load_model_tensors(checkpoint, *trained.model);
  trained.model->eval();
  return trained;
}

}  // namespace posenc
