/** After every suite: the workers' rekognition-locals stopped. The build stays, as `npm run build` left it. */
import { workerRekognitions } from './global-setup';

export default async function globalTeardown(): Promise<void> {
  await Promise.all(
    workerRekognitions()
      .splice(0)
      .map((rekognition) => rekognition.stop()),
  );
}
