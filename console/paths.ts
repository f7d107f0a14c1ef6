/** Where the console's page sends admin API calls; the rest of the path is the API's route (browser and server). */
export const API_PREFIX = "/api/";
